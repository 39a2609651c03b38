// A raw disk file read once, in EBS's 512 KiB blocks: the scan hashes the whole file (the
// content digest the AMI is tagged with, the same sha256 `tskit build` reports) and notes
// which blocks hold anything but zeros, with each block's SHA-256 (what PutSnapshotBlock
// wants). After the scan the disk is a DiskImage whose extents are only those blocks, read
// again by offset: a zero block is read once, and never sent or stored.
import {createHash} from 'node:crypto';
import {open, stat} from 'node:fs/promises';
import {TskitError} from '../../src/errors.ts';
import {SECTOR, type DiskExtent, type DiskImage} from '../../src/formats/disk.ts';

/** The EBS direct APIs' block size (moto reports 512, AWS 524288; AWS's is the contract). */
export const EBS_BLOCK = 512 * 1024;

export interface ScannedBlock {
  index: number;
  /** SHA-256 of the block (zero-padded to EBS_BLOCK at the end of the disk), raw bytes. */
  sha256: Buffer;
}

export interface ScannedDisk extends DiskImage {
  path: string;
  /** Bytes of the file (the virtual size of the disk). */
  size: number;
  /** sha256 of the whole file, hex. */
  sha256: string;
  /** Non-zero blocks, ascending. */
  blocks: ScannedBlock[];
  /** Reads one block (zero-padded to EBS_BLOCK) and checks it still hashes as scanned. */
  readBlock(block: ScannedBlock): Promise<Buffer>;
}

export interface ScanOptions {
  signal?: AbortSignal;
  progress?(done: number, total: number): void;
}

/** Reads `path` once and returns it as a ScannedDisk. */
export async function scanRawDisk(path: string, options: ScanOptions = {}): Promise<ScannedDisk> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new TskitError(`cannot read ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new TskitError(`${path} is not a file`);
  if (info.size === 0) throw new TskitError(`${path} is empty`);
  const size = info.size;
  const whole = createHash('sha256');
  const blocks: ScannedBlock[] = [];
  const handle = await open(path, 'r');
  // Several blocks per read: fewer syscalls, and the buffer is reused.
  const chunk = Buffer.alloc(EBS_BLOCK * 8);
  try {
    for (let offset = 0; offset < size; offset += chunk.length) {
      options.signal?.throwIfAborted();
      const want = Math.min(chunk.length, size - offset);
      const {bytesRead} = await handle.read(chunk, 0, want, offset);
      if (bytesRead !== want) throw new TskitError(`${path} changed while being read (short read at byte ${offset + bytesRead})`);
      const data = chunk.subarray(0, want);
      whole.update(data);
      for (let at = 0; at < want; at += EBS_BLOCK) {
        const block = padBlock(data.subarray(at, Math.min(want, at + EBS_BLOCK)));
        if (isZero(block)) continue;
        blocks.push({index: (offset + at) / EBS_BLOCK, sha256: createHash('sha256').update(block).digest()});
      }
      options.progress?.(offset + want, size);
    }
  } finally {
    await handle.close();
  }
  const sha256 = whole.digest('hex');
  const readBlock = async (block: ScannedBlock): Promise<Buffer> => {
    const data = Buffer.alloc(EBS_BLOCK);
    const file = await open(path, 'r');
    try {
      const offset = block.index * EBS_BLOCK;
      await file.read(data, 0, Math.min(EBS_BLOCK, size - offset), offset);
    } finally {
      await file.close();
    }
    if (!createHash('sha256').update(data).digest().equals(block.sha256)) throw new TskitError(`${path} changed while being pushed (block at byte ${block.index * EBS_BLOCK} differs from the first read)`);
    return data;
  };
  return {
    path,
    size,
    sha256,
    blocks,
    readBlock,
    async *extents(): AsyncIterable<DiskExtent> {
      // The DiskImage contract wants whole sectors: the last block is cut back to the disk's
      // size rounded up to a sector.
      const end = Math.ceil(size / SECTOR) * SECTOR;
      for (const block of blocks) {
        const data = await readBlock(block);
        const offset = block.index * EBS_BLOCK;
        yield {offset, data: data.subarray(0, Math.min(EBS_BLOCK, end - offset))};
      }
    },
  };
}

function padBlock(data: Buffer): Buffer {
  if (data.length === EBS_BLOCK) return data;
  const block = Buffer.alloc(EBS_BLOCK);
  data.copy(block);
  return block;
}

const ZERO_BLOCK = Buffer.alloc(EBS_BLOCK);

export function isZero(data: Buffer): boolean {
  return data.length === EBS_BLOCK ? data.equals(ZERO_BLOCK) : data.equals(ZERO_BLOCK.subarray(0, data.length));
}
