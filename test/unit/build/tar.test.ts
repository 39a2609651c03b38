import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, writeFileSync, mkdirSync, symlinkSync, linkSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {describe, expect, it} from 'vitest';
import type {Entry} from '../../../src/build/entry.ts';
import {readTar} from '../../../src/build/tar/reader.ts';
import {writeTar} from '../../../src/build/tar/writer.ts';
import {collect, dir, file, hardlink, symlink} from '../../support/entries.ts';

async function bytesOf(stream: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function* chunked(buffer: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

const longName = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(20)}`; // 146 chars: ustar prefix+name
const veryLong = `x/${'y'.repeat(200)}/${'z'.repeat(120)}`; // needs a PAX path
// VFS_CAP_REVISION_2 with CAP_SETUID (0x80) and CAP_NET_BIND_SERVICE permitted and effective:
// binary, with a byte that is not valid UTF-8 on its own.
const capability = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

function sample(): Entry[] {
  return [
    dir('deep', {mtime: 5}),
    file('deep/plain', 'hello\n', {uid: 1000, gid: 1001, mode: 0o4755}),
    file(longName, 'long'),
    file(veryLong, 'very long'),
    file('ünïcødé', 'utf8 name'),
    file('bigid', 'ids', {uid: 3_000_000, gid: 4_000_000}),
    file('cap', 'with xattr', {xattrs: {'security.capability': capability}}),
    file('pax', 'linuxkit', {pax: {'LINUXKIT.source': 'docker.io/library/alpine:3.20', 'LINUXKIT.location': 'onboot[0]'}}),
    symlink('link', `../${'t'.repeat(150)}`),
    hardlink('deep/hard', 'deep/plain'),
    {path: 'console', type: 'char', mode: 0o600, uid: 0, gid: 0, mtime: 1, size: 0, devmajor: 5, devminor: 1},
    {path: 'fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0},
    file('empty', ''),
  ];
}

describe('tar writer and reader', () => {
  it('round-trips every kind of entry through our reader, in odd chunk sizes', async () => {
    const archive = await bytesOf(writeTar((async function* () { yield* sample(); })()));
    expect(archive.length % 512).toBe(0);
    for (const size of [1, 7, 511, 512, 4096, archive.length]) {
      const entries: Entry[] = [];
      const contents: string[] = [];
      for await (const entry of readTar(chunked(archive, size), 'test')) {
        contents.push(entry.content ? (await bytesOf(entry.content)).toString() : '');
        delete entry.content;
        entries.push(entry);
      }
      const expected = sample().map((e) => {
        const copy = {...e};
        delete copy.content;
        // LinuxKit's records come back too: build --input-tar reads them
        return copy;
      });
      expect(entries).toEqual(expected);
      expect(contents[1]).toBe('hello\n');
      expect(contents[3]).toBe('very long');
    }
  });

  it('writes archives GNU tar lists and extracts identically', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tskit-tar-'));
    const archive = join(work, 'out.tar');
    writeFileSync(archive, await bytesOf(writeTar((async function* () { yield* sample(); })())));
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', archive], {encoding: 'utf8'});
    expect(listing).toContain('-rwsr-xr-x 1000/1001');
    expect(listing).toContain(longName);
    expect(listing).toContain(veryLong);
    expect(listing).toContain('ünïcødé');
    expect(listing).toContain('3000000/4000000');
    expect(listing).toMatch(/crw------- 0\/0\s+5,1/);
    expect(listing).toContain('deep/hard link to deep/plain');
    const out = join(work, 'x');
    mkdirSync(out);
    // GNU tar warns about LinuxKit's PAX keywords it does not know, and exits 0
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xpf', archive, '-C', out], {stdio: 'ignore'});
    expect(readFileSync(join(out, veryLong), 'utf8')).toBe('very long');
    const xattr = execFileSync('python3', ['-c', `import os,sys; sys.stdout.write(os.getxattr(${JSON.stringify(join(out, 'cap'))}, 'security.capability').hex())`], {encoding: 'utf8'});
    expect(xattr).toBe(capability.toString('hex'));
  });

  it('reads what GNU tar writes in gnu and posix formats', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tskit-tar-'));
    const src = join(work, 'src');
    mkdirSync(join(src, 'd'), {recursive: true});
    writeFileSync(join(src, 'd', 'f'), 'f');
    linkSync(join(src, 'd', 'f'), join(src, 'd', 'g'));
    symlinkSync('f', join(src, 'd', 's'));
    const base = ['dir:d/', 'file:d/f', 'hardlink:d/g->d/f', 'symlink:d/s->f'];
    const list = async (format: string) => {
      const archive = join(work, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '--sort=name', '-cf', archive, '-C', src, 'd']);
      const out = await collect(readTar(chunked(readFileSync(archive), 1000), format));
      return out.map((e) => `${e.type}:${e.path}${e.linkname ? `->${e.linkname}` : ''}`);
    };
    expect(await list('ustar')).toEqual(base);
    // a 146-character name needs GNU's long-name member or a PAX record
    const long = longName.replaceAll('/', '_');
    writeFileSync(join(src, 'd', long), 'gnu long');
    for (const format of ['gnu', 'posix']) {
      expect(await list(format)).toEqual([base[0], `file:d/${long}`, ...base.slice(1)]);
    }
  });

  it('names the byte offset of a corrupt header', async () => {
    const archive = await bytesOf(writeTar((async function* () { yield* [file('a', 'x'.repeat(600)), file('b', 'y')]; })()));
    archive[1536 + 10]! ^= 0xff; // inside the second header (after 512 header + 1024 content)
    await expect(collect(readTar(chunked(archive, 512), 'layer 1 of test:1'))).rejects.toThrow(/layer 1 of test:1: corrupt tar header at byte 1536/);
  });
});
