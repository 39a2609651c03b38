// Checks for the AWS tests: what a snapshot in moto holds (read back block by block, since
// moto verifies no checksums), what a disk file's non-zero 512 KiB blocks are, and disks
// with a known mix of data and zeros. Test material.
import {randomBytes} from 'node:crypto';
import {open, writeFile} from 'node:fs/promises';
import {GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type EBSClient} from '@aws-sdk/client-ebs';
import {messageBootSector} from '../support/initrd-bootdisk.ts';

export const BLOCK = 512 * 1024;

/** Every block the snapshot stores, by index. */
export async function snapshotBlocks(ebs: EBSClient, snapshotId: string): Promise<Map<number, Buffer>> {
  const listing = await ebs.send(new ListSnapshotBlocksCommand({SnapshotId: snapshotId}));
  const blocks = new Map<number, Buffer>();
  for (const block of listing.Blocks ?? []) {
    const got = await ebs.send(new GetSnapshotBlockCommand({SnapshotId: snapshotId, BlockIndex: Number(block.BlockIndex), BlockToken: block.BlockToken!}));
    blocks.set(Number(block.BlockIndex), Buffer.from(await got.BlockData!.transformToByteArray()));
  }
  return blocks;
}

/** The file's blocks that are not all zeros (the last one zero-padded to a whole block). */
export async function nonZeroBlocks(path: string): Promise<Map<number, Buffer>> {
  const file = await open(path, 'r');
  const blocks = new Map<number, Buffer>();
  try {
    const {size} = await file.stat();
    for (let offset = 0; offset < size; offset += BLOCK) {
      const data = Buffer.alloc(BLOCK);
      await file.read(data, 0, Math.min(BLOCK, size - offset), offset);
      if (data.some((b) => b !== 0)) blocks.set(offset / BLOCK, data);
    }
  } finally {
    await file.close();
  }
  return blocks;
}

/** Same indexes, same bytes; a description of the first difference otherwise. */
export function compareBlocks(actual: Map<number, Buffer>, expected: Map<number, Buffer>): string | undefined {
  const a = [...actual.keys()].sort((x, y) => x - y);
  const e = [...expected.keys()].sort((x, y) => x - y);
  if (a.join(',') !== e.join(',')) return `block indexes differ: snapshot has [${a.join(',')}], image has [${e.join(',')}]`;
  for (const index of e) if (!actual.get(index)!.equals(expected.get(index)!)) return `block ${index} differs`;
  return undefined;
}

/**
 * A BIOS-bootable disk of `size` bytes (a multiple of 512, not necessarily of a block): the
 * message boot sector, random data in the given blocks (a partial one where `half` says), the
 * rest zeros.
 */
export async function makeMixedDisk(path: string, size: number, dataBlocks: number[], message = 'TSKIT-AWS-MIXED'): Promise<void> {
  const disk = Buffer.alloc(size);
  messageBootSector(message).copy(disk);
  for (const index of dataBlocks) {
    const at = index * BLOCK;
    if (at >= size) continue;
    // Half a block of data, so a block is sent whole even when only part of it is used.
    randomBytes(Math.min(BLOCK / 2, size - at)).copy(disk, at);
  }
  await writeFile(path, disk);
}
