// A streaming tar reader (ustar, GNU long names, PAX) that keeps PAX values as bytes: the
// npm tar parsers decode PAX records as UTF-8 text, which corrupts binary xattrs such as
// security.capability. File contents are handed on as slices of the input chunks.
import {ByteReader} from '../byte-reader.ts';
import type {Entry, EntryType} from '../entry.ts';
import {printable, TskitError} from '../../errors.ts';

const BLOCK = 512;
/**
 * The largest PAX header or GNU long name/link record read (Go's archive/tar, which LinuxKit
 * and Docker use, refuses the same beyond 1 MiB): such records are held in memory.
 */
export const MAX_SPECIAL_RECORD = 1024 * 1024;

/** A tar member as read; `path` and `linkname` are exactly as stored (not normalised). */
export type TarEntry = Entry;

export async function* readTar(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, what: string): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source);
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  for (;;) {
    const headerOffset = reader.offset;
    const header = await reader.readExact(BLOCK, what);
    if (header === null) return; // no end-of-archive blocks: tolerated, as GNU tar does
    if (isZeroBlock(header)) {
      // End of archive: a second zero block normally follows; whatever comes after is
      // padding, read to the end so the source can check what it was (a digest, a diff_id).
      await reader.drain();
      return;
    }
    verifyChecksum(header, what, headerOffset);

    const typeflag = String.fromCharCode(header[156]!);
    const size = readNumber(header, 124, 12, what, headerOffset, 'size');
    const padded = Math.ceil(size / BLOCK) * BLOCK;

    if ((typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') && size > MAX_SPECIAL_RECORD) {
      const kind = typeflag === 'L' || typeflag === 'K' ? `GNU long ${typeflag === 'L' ? 'name' : 'link'}` : 'PAX header';
      throw new TskitError(`${what}: the ${kind} at byte ${headerOffset} is ${size} bytes, more than the ${MAX_SPECIAL_RECORD} tskit reads (as Go's archive/tar)`);
    }
    if (typeflag === 'g') {
      // A global header's records are not applied to the members after it, as in Go's
      // archive/tar (what Docker and LinuxKit read layers with): checked, then skipped.
      parsePax(await readBody(reader, size, padded, what), what, headerOffset);
      continue;
    }
    if (typeflag === 'x') {
      pax = parsePax(await readBody(reader, size, padded, what), what, headerOffset);
      continue;
    }
    if (typeflag === 'L' || typeflag === 'K') {
      const body = await readBody(reader, size, padded, what);
      const value = cString(body, 0, body.length);
      if (typeflag === 'L') longName = value;
      else longLink = value;
      continue;
    }
    if (typeflag === 'S') throw new TskitError(`${what}: GNU sparse member at byte ${headerOffset} is not supported`);
    if (typeflag === 'V') {
      await reader.skip(padded, what);
      continue;
    }

    const records = pax ?? new Map<string, Buffer>();
    pax = undefined;

    const isUstar = header.subarray(257, 263).toString('latin1') === 'ustar\0';
    let path = cString(header, 0, 100);
    if (isUstar && header[345] !== 0) path = `${cString(header, 345, 155)}/${path}`;
    if (longName !== undefined) path = longName;
    let linkname = cString(header, 157, 100);
    if (longLink !== undefined) linkname = longLink;
    longName = longLink = undefined;

    const paxText = (key: string) => records.get(key)?.toString('utf8');
    path = paxText('path') ?? path;
    linkname = paxText('linkpath') ?? linkname;

    let type = entryType(typeflag, path, what, headerOffset);
    const paxSize = paxText('size');
    const contentSize = paxSize !== undefined ? parsePaxNumber(paxSize, 'size', what, headerOffset) : size;
    const contentPadded = Math.ceil(contentSize / BLOCK) * BLOCK;

    const entry: Entry = {
      path,
      type,
      mode: readNumber(header, 100, 8, what, headerOffset, 'mode') & 0o7777,
      uid: paxNumberOr(paxText('uid'), () => readNumber(header, 108, 8, what, headerOffset, 'uid'), 'uid', what, headerOffset),
      gid: paxNumberOr(paxText('gid'), () => readNumber(header, 116, 8, what, headerOffset, 'gid'), 'gid', what, headerOffset),
      mtime: paxText('mtime') !== undefined ? Math.floor(Number(paxText('mtime'))) : readNumber(header, 136, 12, what, headerOffset, 'mtime'),
      size: type === 'file' ? contentSize : 0,
    };
    if (type === 'symlink' || type === 'hardlink') entry.linkname = linkname;
    if (type === 'char' || type === 'block') {
      entry.devmajor = readNumber(header, 329, 8, what, headerOffset, 'devmajor');
      entry.devminor = readNumber(header, 337, 8, what, headerOffset, 'devminor');
    }
    const xattrs = xattrsFrom(records);
    if (xattrs) entry.xattrs = xattrs;
    // LinuxKit's provenance records (LINUXKIT.source, .location): `build --input-tar` reads them
    const linuxkit = [...records].filter(([key]) => key.startsWith('LINUXKIT.'));
    if (linuxkit.length > 0) entry.pax = Object.fromEntries(linuxkit.map(([key, value]) => [key, value.toString('utf8')]));

    if (type === 'file' && contentSize > 0) {
      const body = new BodyWindow(reader, contentSize, `${what}: ${printable(path)}`);
      entry.content = body;
      yield entry;
      await body.finish();
      await reader.skip(contentPadded - contentSize, what);
    } else {
      yield entry;
      // Hard links and others may carry data in some writers: it belongs to nothing.
      await reader.skip(contentPadded, what);
    }
  }
}

/** A member's content: yields its bytes once; whatever the consumer leaves unread is skipped. */
class BodyWindow implements AsyncIterable<Uint8Array> {
  private left: number;
  private started = false;
  private readonly reader: ByteReader;
  private readonly what: string;

  constructor(reader: ByteReader, size: number, what: string) {
    this.reader = reader;
    this.left = size;
    this.what = what;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (this.started) throw new Error(`${this.what}: content read twice`);
    this.started = true;
    for await (const chunk of this.reader.window(this.left, this.what)) {
      this.left -= chunk.length;
      yield chunk;
    }
  }

  async finish(): Promise<void> {
    if (this.left > 0) {
      const left = this.left;
      this.left = 0;
      await this.reader.skip(left, this.what);
    }
  }
}

async function readBody(reader: ByteReader, size: number, padded: number, what: string): Promise<Buffer> {
  const body = size === 0 ? Buffer.alloc(0) : await reader.readExact(size, what);
  if (body === null) throw new TskitError(`${what}: unexpected end of data`);
  await reader.skip(padded - size, what);
  return Buffer.from(body); // detach from the shared chunk
}

function entryType(flag: string, path: string, what: string, offset: number): EntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      // v7 archives mark directories only by a trailing slash
      return path.endsWith('/') ? 'dir' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      throw new TskitError(`${what}: unsupported tar member type ${JSON.stringify(flag)} at byte ${offset}`);
  }
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function verifyChecksum(header: Buffer, what: string, offset: number): void {
  const stored = readNumber(header, 148, 8, what, offset, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TskitError(`${what}: corrupt tar header at byte ${offset} (checksum ${stored}, computed ${unsigned})`);
  }
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function readNumber(buf: Buffer, start: number, length: number, what: string, offset: number, field: string): number {
  const first = buf[start]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement, used for values octal cannot hold
    let value = BigInt(first & 0x7f);
    if (first === 0xff) throw new TskitError(`${what}: negative ${field} in tar header at byte ${offset}`);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(buf[start + i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TskitError(`${what}: ${field} too large in tar header at byte ${offset}`);
    return Number(value);
  }
  const text = buf.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TskitError(`${what}: bad ${field} field ${JSON.stringify(text)} in tar header at byte ${offset}`);
  return parseInt(text, 8);
}

function parsePax(body: Buffer, what: string, offset: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const length = Number(body.toString('latin1', pos, space));
    if (!Number.isInteger(length) || length <= 0 || pos + length > body.length) {
      if (body.subarray(pos).every((b) => b === 0)) break;
      throw new TskitError(`${what}: corrupt PAX record in tar header at byte ${offset}`);
    }
    const record = body.subarray(space + 1, pos + length - 1); // drop the trailing newline
    const equals = record.indexOf(0x3d);
    if (equals === -1) throw new TskitError(`${what}: corrupt PAX record in tar header at byte ${offset}`);
    records.set(record.toString('utf8', 0, equals), Buffer.from(record.subarray(equals + 1)));
    pos += length;
  }
  return records;
}

function parsePaxNumber(text: string, field: string, what: string, offset: number): number {
  if (!/^\d+$/.test(text)) throw new TskitError(`${what}: bad PAX ${field} ${JSON.stringify(text)} at byte ${offset}`);
  return Number(text);
}

function paxNumberOr(text: string | undefined, fallback: () => number, field: string, what: string, offset: number): number {
  return text === undefined ? fallback() : parsePaxNumber(text, field, what, offset);
}

function xattrsFrom(records: Map<string, Buffer>): Record<string, Buffer> | undefined {
  let out: Record<string, Buffer> | undefined;
  for (const [key, value] of records) {
    if (key.startsWith('SCHILY.xattr.')) {
      (out ??= {})[key.slice('SCHILY.xattr.'.length)] = value;
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      // libarchive URL-encodes the name and base64-encodes the value
      const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
      (out ??= {})[name] = Buffer.from(value.toString('latin1'), 'base64');
    }
  }
  return out;
}
