// The one disk entry point against qemu-img's images of every format it reads (and bytes in
// memory): every extent and every readAt equals the raw disk they were made from; zero
// grains and clusters are not yielded; the provider kit cuts them into upload blocks.
import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openDisk} from '../../../src/formats/decode.ts';
import {diskBlocks, diskRanges} from '../../../src/provider-kit/disk-blocks.ts';

const EBS_BLOCK = 512 * 1024;

let work: string;
let raw: Buffer;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-vmdk-'));
  // 5 MiB + 7 sectors (not a whole grain), data scattered, the tail sector included.
  raw = Buffer.alloc(5 * 1024 * 1024 + 7 * 512);
  randomBytes(700).copy(raw, 100);
  randomBytes(64 * 1024).copy(raw, 2 * 1024 * 1024 + 4096);
  randomBytes(512).copy(raw, raw.length - 512);
  await writeFile(join(work, 'disk.raw'), raw);
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

const CASES: Array<[string, string, string[], string, string]> = [
  ['vmdk monolithicSparse', 'vmdk', ['-o', 'subformat=monolithicSparse'], 'vmdk', 'monolithicSparse'],
  ['vmdk streamOptimized', 'vmdk', ['-o', 'subformat=streamOptimized'], 'vmdk', 'streamOptimized'],
  ['qcow2', 'qcow2', [], 'qcow2', 'v3'],
  ['qcow2 v2 compressed', 'qcow2', ['-c', '-o', 'compat=0.10'], 'qcow2', 'v2'],
  ['dynamic VHD', 'vpc', ['-o', 'subformat=dynamic,force_size=on'], 'vhd', 'dynamic'],
  ['fixed VHD', 'vpc', ['-o', 'subformat=fixed,force_size=on'], 'vhd', 'fixed'],
  ['VHDX', 'vhdx', [], 'vhdx', 'vhdx'],
];

describe('openDisk', () => {
  for (const [label, qemuFormat, options, format, variant] of CASES) {
    it(`${label}: extents and readAt give back the raw disk`, async () => {
      const path = join(work, `${label.replace(/ /g, '-')}.img`);
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', qemuFormat, ...options, join(work, 'disk.raw'), path]);
      const disk = await openDisk(path);
      try {
        expect([disk.format, disk.variant]).toEqual([format, variant]);
        // qemu pads VHD and VHDX to their own multiples; the bytes past the raw disk are zeros
        expect(disk.image.size).toBeGreaterThanOrEqual(raw.length);
        const rebuilt = Buffer.alloc(disk.image.size);
        let stored = 0;
        for await (const extent of disk.image.extents()) {
          extent.data.copy(rebuilt, extent.offset);
          stored += extent.data.length;
        }
        expect(rebuilt.subarray(0, raw.length).equals(raw)).toBe(true);
        expect(rebuilt.subarray(raw.length).every((b) => b === 0)).toBe(true);
        // Zero grains and clusters are not read: far less than the whole disk came out (VHD and
        // VHDX allocate 2 MiB and 32 MiB blocks: no more than the disk is all they promise).
        expect(stored).toBeLessThanOrEqual(format === 'vhd' || format === 'vhdx' ? raw.length : raw.length / 4);
        expect((await disk.readAt(90, 800)).equals(raw.subarray(90, 890))).toBe(true);
        expect((await disk.readAt(2 * 1024 * 1024, 70_000)).equals(raw.subarray(2 * 1024 * 1024, 2 * 1024 * 1024 + 70_000))).toBe(true);
        expect((await disk.readAt(raw.length - 1000, 2000)).subarray(0, 1000).equals(raw.subarray(raw.length - 1000))).toBe(true);
        expect((await disk.readAt(raw.length + 10 * 1024 * 1024, 512)).every((b) => b === 0)).toBe(true);
        // Cut into EBS blocks: the non-zero ones, padded.
        const blocks = [];
        for await (const block of diskBlocks(disk.image, EBS_BLOCK)) blocks.push(block);
        expect(blocks.map((b) => b.index)).toEqual([0, 4, 10]);
        const last = Buffer.alloc(EBS_BLOCK);
        raw.copy(last, 0, 10 * EBS_BLOCK);
        expect(blocks[2]!.data.equals(last)).toBe(true);
      } finally {
        await disk.close();
      }
    });
  }

  it('bytes in memory open the same way as the file', async () => {
    const bytes = await readFile(join(work, 'qcow2.img'));
    const disk = await openDisk(bytes, {name: 'buffer.qcow2'});
    expect([disk.name, disk.format, disk.image.size]).toEqual(['buffer.qcow2', 'qcow2', raw.length]);
    const rebuilt = Buffer.alloc(raw.length);
    for await (const extent of disk.image.extents()) extent.data.copy(rebuilt, extent.offset);
    expect(rebuilt.equals(raw)).toBe(true);
    const plain = await openDisk(raw);
    expect([plain.format, (await plain.readAt(100, 700)).equals(raw.subarray(100, 800))]).toEqual(['raw', true]);
  });

  it('a descriptor with separate extents, or something else, is refused by name', async () => {
    const descriptor = join(work, 'flat.vmdk');
    await writeFile(descriptor, '# Disk DescriptorFile\nversion=1\n');
    await expect(openDisk(descriptor)).rejects.toThrow(/a descriptor whose data lives in other files/);
    await expect(openDisk(join(work, 'disk.raw'), {format: 'vmdk'})).rejects.toThrow(/no "KDMV" sparse extent header at byte 0/);
    expect((await readFile(descriptor)).length).toBeGreaterThan(0);
  });
});

describe('diskRanges', () => {
  it('the non-zero bytes as ranges of at most maxBytes, zero granules dropped', async () => {
    const a = randomBytes(1024);
    const image = {
      size: 64 * 1024 * 1024,
      async *extents() {
        yield {offset: 512, data: Buffer.concat([a, Buffer.alloc(200 * 1024), a])};
        yield {offset: 8 * 1024 * 1024, data: randomBytes(9 * 1024 * 1024)};
      },
    };
    const ranges = [];
    for await (const range of diskRanges(image, {maxBytes: 4 * 1024 * 1024})) ranges.push([range.offset, range.data.length]);
    // the first extent's zero granules (64 KiB, aligned on the disk) go; what stays is cut at 4 MiB
    expect(ranges).toEqual([[512, 65536 - 512], [196608, 207360 - 196608], [8 * 1048576, 4 * 1048576], [12 * 1048576, 4 * 1048576], [16 * 1048576, 1048576]]);
  });
});

describe('diskBlocks', () => {
  it('joins unaligned extents into blocks and leaves zero blocks out', async () => {
    const a = randomBytes(1024);
    const b = randomBytes(EBS_BLOCK + 4096);
    const image = {
      size: 8 * EBS_BLOCK,
      async *extents() {
        yield {offset: EBS_BLOCK - 512, data: a.subarray(0, 512)};
        yield {offset: EBS_BLOCK, data: Buffer.alloc(EBS_BLOCK)};
        yield {offset: 3 * EBS_BLOCK - 1024, data: b};
        yield {offset: 6 * EBS_BLOCK, data: Buffer.alloc(512)};
      },
    };
    const blocks = [];
    for await (const block of diskBlocks(image, EBS_BLOCK)) blocks.push(block);
    expect(blocks.map((x) => x.index)).toEqual([0, 2, 3, 4]);
    expect(blocks.every((x) => x.data.length === EBS_BLOCK)).toBe(true);
    expect(blocks[0]!.data.subarray(EBS_BLOCK - 512).equals(a.subarray(0, 512))).toBe(true);
    expect(blocks[1]!.data.subarray(EBS_BLOCK - 1024).equals(b.subarray(0, 1024))).toBe(true);
    expect(blocks[2]!.data.equals(b.subarray(1024, 1024 + EBS_BLOCK))).toBe(true);
    expect(blocks[3]!.data.subarray(0, 3072).equals(b.subarray(1024 + EBS_BLOCK))).toBe(true);
  });
});
