// Test material: tar streams as a grammar of members with every field under the fuzzer's
// control (type flags honest writers never use, sizes that disagree with the bodies, PAX and
// GNU records with odd keys and values, names with "..", deep paths, links through links),
// often gzip'd, sometimes cut short: inputs that reach deep into the tar reader and the
// flattening that sits on it, where random bytes would stop at the first checksum.
import {gzipSync} from 'node:zlib';
import fc from 'fast-check';
import {END, pad, paxRecord, tarHeader} from '../support/crafted-layers.ts';

const names = fc.oneof(
  fc.constantFrom('a', 'a/b', 'a/b/c', 'd/', './x', '../x', 'a/../../x', '/abs/f', '', '.', 'lnk', 'lnk/f', 'lnk/../f', 'a/.wh.b', 'a/.wh..wh..opq', '.wh.a', 'etc/passwd', 'boot/kernel', 'dev/null'),
  fc.array(fc.constantFrom('a', 'b', '..', '.', 'lnk', ''), {minLength: 1, maxLength: 12}).map((parts) => parts.join('/')),
  fc.integer({min: 1, max: 2100}).map((depth) => `${'a/'.repeat(depth)}f`),
  fc.string({unit: 'binary', maxLength: 120}),
);
const linkTargets = fc.oneof(names, fc.constantFrom('/', '/etc', '../../..', 'lnk', 'a', 'a/b'));
const paxKeys = fc.constantFrom('path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'SCHILY.xattr.security.capability', 'LIBARCHIVE.xattr.user%2Ex', 'GNU.sparse.size', 'comment', '');
const paxValues = fc.oneof(names, fc.constantFrom('0', '-1', '1.5', '99999999999999999999', 'NaN', '1e9', '', 'AAAA'), fc.string({unit: 'binary', maxLength: 40}));

interface Member {
  type: string;
  name: string;
  linkname: string;
  size: number;
  sizeField: 'octal' | 'base256' | 'garbage';
  body: Uint8Array;
  pax: Array<[string, string]>;
  paxKind: 'none' | 'x' | 'g' | 'L' | 'K';
  badChecksum: boolean;
  mode: number;
}

const member: fc.Arbitrary<Member> = fc.record({
  type: fc.oneof({arbitrary: fc.constantFrom('0', '5', '2', '1'), weight: 6}, {arbitrary: fc.constantFrom('\0', '3', '4', '6', '7', 'S', 'V', 'Z', 'x', 'g', 'L', 'K'), weight: 1}),
  name: names,
  linkname: linkTargets,
  size: fc.oneof({arbitrary: fc.nat(1500), weight: 8}, {arbitrary: fc.constantFrom(511, 512, 513, 1024 * 1024 + 1, 2 ** 31, 2 ** 33 - 1, 2 ** 40), weight: 1}),
  sizeField: fc.oneof({arbitrary: fc.constant('octal' as const), weight: 8}, {arbitrary: fc.constantFrom('base256' as const, 'garbage' as const), weight: 1}),
  body: fc.uint8Array({maxLength: 1500}),
  pax: fc.array(fc.tuple(paxKeys, paxValues), {maxLength: 4}),
  paxKind: fc.oneof({arbitrary: fc.constant('none' as const), weight: 5}, {arbitrary: fc.constantFrom('x' as const, 'g' as const, 'L' as const, 'K' as const), weight: 2}),
  badChecksum: fc.nat(9).map((n) => n === 0),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o777, 0o7777),
});

function header(name: string, type: string, size: number, m: Member): Buffer {
  return tarHeader(name, type, size, {linkname: m.linkname, mode: m.mode, mtime: 1_700_000_000, sizeField: m.sizeField, badChecksum: m.badChecksum});
}

function encode(m: Member): Buffer {
  const parts: Buffer[] = [];
  if (m.paxKind === 'x' || m.paxKind === 'g') {
    const records = Buffer.concat(m.pax.map(([k, v]) => paxRecord(k, v)));
    parts.push(header('PaxHeader', m.paxKind, records.length, {...m, sizeField: 'octal'}), records, pad(records.length));
  } else if (m.paxKind === 'L' || m.paxKind === 'K') {
    const long = Buffer.from(`${m.paxKind === 'L' ? m.name : m.linkname}\0`);
    parts.push(header('././@LongLink', m.paxKind, long.length, {...m, sizeField: 'octal'}), long, pad(long.length));
  }
  const body = Buffer.from(m.body.subarray(0, Math.min(m.body.length, m.size)));
  parts.push(header(m.name, m.type, m.size, m), body, pad(body.length));
  return Buffer.concat(parts);
}

/** Whole tar streams: members, then the end (or not), maybe cut, maybe gzip'd. */
export const tarStreams: fc.Arbitrary<Buffer> = fc
  .record({
    members: fc.array(member, {maxLength: 12}),
    end: fc.constantFrom('zeros', 'none', 'garbage-after'),
    cut: fc.option(fc.double({min: 0, max: 1, noNaN: true}), {freq: 6}),
    gzip: fc.boolean(),
  })
  .map(({members, end, cut, gzip}) => {
    let bytes = Buffer.concat([...members.map(encode), end === 'none' ? Buffer.alloc(0) : END, end === 'garbage-after' ? Buffer.from('trailing garbage') : Buffer.alloc(0)]);
    if (cut !== null) bytes = bytes.subarray(0, Math.floor(cut * bytes.length));
    return gzip ? gzipSync(bytes) : bytes;
  });
