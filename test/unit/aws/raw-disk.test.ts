// The raw disk reader: one pass, non-zero 512 KiB blocks with their SHA-256s, the file's
// sha256, and a DiskImage of only those blocks; a file changed under it is caught.
import {createHash, randomBytes} from 'node:crypto';
import {mkdtemp, open, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {EBS_BLOCK, scanRawDisk} from '../../../providers/aws/raw-disk.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-raw-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('scanRawDisk', () => {
  it('finds the non-zero blocks (a partial last one included) and hashes the file', async () => {
    const size = 9 * EBS_BLOCK + 3 * 512;
    const disk = Buffer.alloc(size);
    randomBytes(100).copy(disk, 7 * EBS_BLOCK + 12345);
    randomBytes(512).copy(disk, 9 * EBS_BLOCK + 1024);
    disk[5] = 1;
    const path = join(work, 'a.raw');
    await writeFile(path, disk);
    const scanned = await scanRawDisk(path);
    expect(scanned.size).toBe(size);
    expect(scanned.sha256).toBe(createHash('sha256').update(disk).digest('hex'));
    expect(scanned.blocks.map((b) => b.index)).toEqual([0, 7, 9]);
    const padded = Buffer.alloc(EBS_BLOCK);
    disk.copy(padded, 0, 9 * EBS_BLOCK);
    expect(scanned.blocks[2]!.sha256.equals(createHash('sha256').update(padded).digest())).toBe(true);
    // As a DiskImage: only those blocks, the last cut back to the disk's size.
    const extents = [];
    for await (const extent of scanned.extents()) extents.push(extent);
    expect(extents.map((e) => [e.offset, e.data.length])).toEqual([[0, EBS_BLOCK], [7 * EBS_BLOCK, EBS_BLOCK], [9 * EBS_BLOCK, 3 * 512]]);
    expect(Buffer.concat(extents.map((e) => e.data)).equals(Buffer.concat([disk.subarray(0, EBS_BLOCK), disk.subarray(7 * EBS_BLOCK, 8 * EBS_BLOCK), disk.subarray(9 * EBS_BLOCK)]))).toBe(true);
  });

  it('a block changed after the scan is refused when read for upload', async () => {
    const path = join(work, 'b.raw');
    const disk = Buffer.alloc(2 * EBS_BLOCK);
    disk[EBS_BLOCK + 1] = 9;
    await writeFile(path, disk);
    const scanned = await scanRawDisk(path);
    const file = await open(path, 'r+');
    await file.write(Buffer.from([8]), 0, 1, EBS_BLOCK + 2);
    await file.close();
    await expect(scanned.readBlock(scanned.blocks[0]!)).rejects.toThrow(/changed while being pushed \(block at byte 524288/);
  });

  it('an empty or missing file is a clear error', async () => {
    const empty = join(work, 'empty.raw');
    await writeFile(empty, '');
    await expect(scanRawDisk(empty)).rejects.toThrow(/is empty/);
    await expect(scanRawDisk(join(work, 'nope.raw'))).rejects.toThrow(/no such file/);
  });
});
