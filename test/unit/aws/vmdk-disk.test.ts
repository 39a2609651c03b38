// The VMDK reader against qemu-img's VMDKs: every extent it yields and every readAt equals the
// raw disk they were made from; zero grains are not yielded.
import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ebsBlocks} from '../../../providers/aws/ebs-blocks.ts';
import {EBS_BLOCK} from '../../../providers/aws/raw-disk.ts';
import {openVmdk} from '../../../providers/aws/vmdk-disk.ts';

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

describe('openVmdk', () => {
  for (const subformat of ['monolithicSparse', 'streamOptimized']) {
    it(`${subformat}: extents and readAt give back the raw disk`, async () => {
      const path = join(work, `${subformat}.vmdk`);
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, join(work, 'disk.raw'), path]);
      const disk = await openVmdk(path);
      try {
        expect(disk.size).toBe(raw.length);
        const rebuilt = Buffer.alloc(raw.length);
        let stored = 0;
        for await (const extent of disk.extents()) {
          extent.data.copy(rebuilt, extent.offset);
          stored += extent.data.length;
        }
        expect(rebuilt.equals(raw)).toBe(true);
        // Zero grains are not read: far less than the whole disk came out.
        expect(stored).toBeLessThan(raw.length / 4);
        expect((await disk.readAt(90, 800)).equals(raw.subarray(90, 890))).toBe(true);
        expect((await disk.readAt(2 * 1024 * 1024, 70_000)).equals(raw.subarray(2 * 1024 * 1024, 2 * 1024 * 1024 + 70_000))).toBe(true);
        expect((await disk.readAt(raw.length - 1000, 2000)).subarray(0, 1000).equals(raw.subarray(raw.length - 1000))).toBe(true);
        // Cut into EBS blocks: the non-zero ones, padded.
        const blocks = [];
        for await (const block of ebsBlocks(disk)) blocks.push(block);
        expect(blocks.map((b) => b.index)).toEqual([0, 4, 10]);
        const last = Buffer.alloc(EBS_BLOCK);
        raw.copy(last, 0, 10 * EBS_BLOCK);
        expect(blocks[2]!.data.equals(last)).toBe(true);
      } finally {
        await disk.close();
      }
    });
  }

  it('a descriptor with separate extents, or something else, is refused by name', async () => {
    const descriptor = join(work, 'flat.vmdk');
    await writeFile(descriptor, '# Disk DescriptorFile\nversion=1\n');
    await expect(openVmdk(descriptor)).rejects.toThrow(/VMDK descriptor whose data lives in separate extent files/);
    await expect(openVmdk(join(work, 'disk.raw'))).rejects.toThrow(/not a VMDK sparse extent/);
    expect((await readFile(descriptor)).length).toBeGreaterThan(0);
  });
});

describe('ebsBlocks', () => {
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
    for await (const block of ebsBlocks(image)) blocks.push(block);
    expect(blocks.map((x) => x.index)).toEqual([0, 2, 3, 4]);
    expect(blocks.every((x) => x.data.length === EBS_BLOCK)).toBe(true);
    expect(blocks[0]!.data.subarray(EBS_BLOCK - 512).equals(a.subarray(0, 512))).toBe(true);
    expect(blocks[1]!.data.subarray(EBS_BLOCK - 1024).equals(b.subarray(0, 1024))).toBe(true);
    expect(blocks[2]!.data.equals(b.subarray(1024, 1024 + EBS_BLOCK))).toBe(true);
    expect(blocks[3]!.data.subarray(0, 3072).equals(b.subarray(1024 + EBS_BLOCK))).toBe(true);
  });
});
