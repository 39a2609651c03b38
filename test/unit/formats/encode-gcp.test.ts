// The GCE image tarball, read by GNU tar and gzip: exactly one member, disk.raw, a plain
// file in the oldgnu format, of a whole number of GiB, holding the disk byte for byte.
import {execFileSync, spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdtempSync} from 'node:fs';
import {open, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {oldGnuHeader} from '../../../src/formats/gcp-tar.ts';
import {memoryDiskImage, mixedDisk} from '../../support/disk-images.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'tskit-test-gcp-'));
const out = join(dir, 'disk.tar.gz');
let start: Buffer;
let end: Buffer;

beforeAll(async () => {
  // a 1 GiB disk: mixed content at the start, a last MiB of data at the end, zeros between
  start = mixedDisk(9 * MiB + 512, 'gcp-start');
  end = mixedDisk(MiB, 'gcp-end');
  const image = {
    size: GiB,
    async *extents() {
      yield* memoryDiskImage(start).extents();
      for await (const extent of memoryDiskImage(end).extents()) yield {offset: GiB - MiB + extent.offset, data: extent.data};
    },
  };
  await encodeDisk('gcp', image, out, {epoch: 1_700_000_000});
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('gcp tarball', () => {
  it('GNU gzip decompresses it, GNU tar lists exactly disk.raw (1 GiB), and the member is the disk', async () => {
    // one decompression by gzip feeds both tar and the hash of the member's bytes
    const gzip = spawn('gzip', ['-dc', out], {stdio: ['ignore', 'pipe', 'inherit']});
    const tar = spawn('tar', ['-tvf', '-'], {stdio: ['pipe', 'pipe', 'inherit']});
    let listing = '';
    tar.stdout.on('data', (d: Buffer) => (listing += d.toString()));
    const member = createHash('sha256');
    let total = 0;
    for await (const chunk of gzip.stdout as AsyncIterable<Buffer>) {
      const from = Math.max(0, 512 - total);
      const to = Math.min(chunk.length, 512 + GiB - total);
      if (to > from) member.update(chunk.subarray(from, to));
      total += chunk.length;
      if (!tar.stdin.write(chunk)) await new Promise((r) => tar.stdin.once('drain', r));
    }
    tar.stdin.end();
    const exit = (child: ReturnType<typeof spawn>) => new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('close', r)));
    expect(await exit(gzip)).toBe(0);
    expect(await exit(tar)).toBe(0);
    expect(listing.trim().split('\n')).toEqual([expect.stringMatching(/^-rw-r--r-- root\/root 1073741824 2023-11-14 22:13 disk\.raw$/)]);
    expect(total % (20 * 512)).toBe(0); // padded to a whole record, as GNU tar does
    expect(total).toBeGreaterThanOrEqual(512 + GiB + 1024);
    const expected = createHash('sha256').update(start);
    const zeros = Buffer.alloc(MiB);
    let at = start.length;
    expected.update(zeros.subarray(0, MiB - (at % MiB)));
    at += MiB - (at % MiB);
    for (; at < GiB - MiB; at += MiB) expected.update(zeros);
    expected.update(end);
    expect(member.digest('hex')).toBe(expected.digest('hex'));
  });

  it('has an oldgnu header ("ustar  \\0"), not a sparse member', async () => {
    const header = execFileSync('sh', ['-c', `gzip -dc '${out}' | head -c 512`], {encoding: 'buffer'});
    expect(header.toString('latin1', 257, 265)).toBe('ustar  \0');
    expect(header.toString('latin1', 156, 157)).toBe('0'); // a regular file; GNU sparse members are 'S'
    expect(header.toString('latin1', 0, 9)).toBe('disk.raw\0');
    const sum = [...header].reduce((a, b, i) => a + (i >= 148 && i < 156 ? 32 : b), 0);
    expect(Number.parseInt(header.toString('latin1', 148, 154), 8)).toBe(sum);
  });

  it('is the same bytes every time', async () => {
    const first = await readFile(out);
    const again = join(dir, 'again.tar.gz');
    await encodeDisk('gcp', {size: GiB, extents: () => memoryDiskImage(start).extents()}, again, {epoch: 1_700_000_000});
    await encodeDisk('gcp', {size: GiB, extents: () => memoryDiskImage(start).extents()}, join(dir, 'again2.tar.gz'), {epoch: 1_700_000_000});
    expect((await readFile(again)).equals(await readFile(join(dir, 'again2.tar.gz')))).toBe(true);
    expect(first.length).toBeGreaterThan(0);
  });

  it('writes sizes of 8 GiB and more in base-256, as GNU tar reads them', async () => {
    const big = 10 * GiB;
    const tar = join(dir, 'big.tar');
    const file = await open(tar, 'w');
    await file.write(oldGnuHeader('disk.raw', big, 0), 0, 512, 0);
    await file.truncate(512 + big + 1024); // a sparse file: tar skips the member by seeking
    await file.close();
    expect(execFileSync('tar', ['-tvf', tar], {encoding: 'utf8'})).toMatch(/ 10737418240 1970-01-01 00:00 disk\.raw\n$/);
    await rm(tar);
  });
});
