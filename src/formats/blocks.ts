// Re-chunks a DiskImage into the fixed-size blocks a container format allocates (qcow2
// clusters, VHD and VHDX blocks, VMDK grains) and drops the blocks that are all zero, so
// no format stores, compresses or hashes a zero block. scanBlocks is the first of the two
// passes the sparse formats make: it learns which blocks exist (their tables precede the
// data in the file) and a fingerprint of the content their identifiers derive from.
import {createHash} from 'node:crypto';
import {crc32} from 'node:zlib';
import {SECTOR, type DiskImage} from './disk.ts';

export interface DiskBlock {
  /** Block number: the block covers bytes [index * blockSize, (index + 1) * blockSize). */
  index: number;
  /** Exactly blockSize bytes, not all zero; past the disk's end it is zero-padded. Read-only: it may be a view into an extent. */
  data: Buffer;
}

export interface BlockOptions {
  signal?: AbortSignal;
  /** Called with the virtual byte offset reached, after each extent. */
  progress?(offset: number): void;
}

const ZERO_CHUNK = 1024 * 1024;
const sharedZeros = Buffer.alloc(ZERO_CHUNK);

/** A read-only buffer of zeros (shared: never write into it). */
export function zeros(length: number): Buffer {
  return length <= ZERO_CHUNK ? sharedZeros.subarray(0, length) : Buffer.alloc(length);
}

export function isZero(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZERO_CHUNK) {
    const end = Math.min(data.length, at + ZERO_CHUNK);
    if (!data.subarray(at, end).equals(sharedZeros.subarray(0, end - at))) return false;
  }
  return true;
}

/** The non-zero blocks of `image`, in ascending order. */
export async function* nonZeroBlocks(image: DiskImage, blockSize: number, options: BlockOptions = {}): AsyncGenerator<DiskBlock> {
  let current: Buffer | undefined;
  let currentIndex = -1;
  let previousEnd = 0;
  for await (const extent of image.extents()) {
    options.signal?.throwIfAborted();
    const {offset, data} = extent;
    checkExtent(image, offset, data.length, previousEnd);
    previousEnd = offset + data.length;
    let at = 0;
    while (at < data.length) {
      const position = offset + at;
      const index = Math.floor(position / blockSize);
      if (index !== currentIndex && current) {
        if (!isZero(current)) yield {index: currentIndex, data: current};
        current = undefined;
      }
      const within = position - index * blockSize;
      const take = Math.min(blockSize - within, data.length - at);
      if (within === 0 && take === blockSize) {
        // a whole block inside one extent: pass a view, no copy
        const view = data.subarray(at, at + blockSize);
        if (!isZero(view)) yield {index, data: view};
        currentIndex = -1;
      } else {
        if (!current) {
          current = Buffer.alloc(blockSize);
          currentIndex = index;
        }
        data.copy(current, within, at, at + take);
      }
      at += take;
    }
    options.progress?.(previousEnd);
  }
  if (current && !isZero(current)) yield {index: currentIndex, data: current};
}

function checkExtent(image: DiskImage, offset: number, length: number, previousEnd: number): void {
  if (offset % SECTOR !== 0 || length % SECTOR !== 0 || offset < previousEnd || offset + length > image.size) {
    throw new Error(`disk image extent at ${offset} (${length} bytes) breaks the DiskImage contract (512-aligned, ascending, within ${image.size} bytes, after ${previousEnd})`);
  }
}

export interface BlockMap {
  blockSize: number;
  /** Blocks on the disk (the last may be partial). */
  blocks: number;
  /** Numbers of the non-zero blocks, ascending. */
  allocated: Float64Array;
  /** sha256 of the disk size and each non-zero block's number and CRC-32: what identifiers derive from (empty if not asked for). */
  fingerprint: Buffer;
}

/** Pass one: which blocks hold data, and (unless `fingerprint` is false) the content fingerprint. */
export async function scanBlocks(image: DiskImage, blockSize: number, options: BlockOptions & {fingerprint?: boolean} = {}): Promise<BlockMap> {
  const withFingerprint = options.fingerprint !== false;
  // block numbers pass 2^32 on large sparse disks (a 1 PiB qcow2 has 2^34 clusters): doubles hold them exactly
  const blocks = Math.ceil(image.size / blockSize);
  let allocated = new Float64Array(1024);
  let count = 0;
  const hash = createHash('sha256');
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(image.size));
  hash.update(head);
  const record = Buffer.alloc(12 * 4096);
  let filled = 0;
  for await (const block of nonZeroBlocks(image, blockSize, options)) {
    if (count === allocated.length) {
      const grown = new Float64Array(allocated.length * 2);
      grown.set(allocated);
      allocated = grown;
    }
    allocated[count++] = block.index;
    if (!withFingerprint) continue;
    record.writeBigUInt64BE(BigInt(block.index), filled);
    record.writeUInt32BE(crc32(block.data), filled + 8);
    filled += 12;
    if (filled === record.length) {
      hash.update(record);
      filled = 0;
    }
  }
  hash.update(record.subarray(0, filled));
  return {blockSize, blocks, allocated: allocated.slice(0, count), fingerprint: withFingerprint ? hash.digest() : Buffer.alloc(0)};
}

/**
 * Fails pass two when it sees other blocks than pass one did (the source changed under us).
 * `index` undefined checks that pass two saw all of them.
 */
export function expectBlock(map: BlockMap, ordinal: number, index?: number): void {
  if (index === undefined ? ordinal !== map.allocated.length : map.allocated[ordinal] !== index) {
    throw new Error(`the disk image changed between the two passes of its encoder (block ${index ?? 'end'}, expected ${map.allocated[ordinal] ?? 'no more'})`);
  }
}

/** Content fingerprint without a block map, computed alongside a single pass. */
export class Fingerprint {
  private readonly hash = createHash('sha256');

  constructor(size: number) {
    const head = Buffer.alloc(8);
    head.writeBigUInt64BE(BigInt(size));
    this.hash.update(head);
  }

  add(block: DiskBlock): void {
    const record = Buffer.alloc(12);
    record.writeBigUInt64BE(BigInt(block.index));
    record.writeUInt32BE(crc32(block.data), 8);
    this.hash.update(record);
  }

  digest(): Buffer {
    return this.hash.digest();
  }
}

/**
 * Joins consecutive blocks whose bytes already sit side by side in memory (views into one
 * extent) into longer runs, so writers make a few large writes instead of many small ones.
 */
export async function* blockRuns(blocks: AsyncIterable<DiskBlock>, maxBytes = 4 * 1024 * 1024): AsyncGenerator<DiskBlock> {
  let run: DiskBlock | undefined;
  let nextIndex = -1;
  for await (const block of blocks) {
    if (run && block.index === nextIndex && run.data.length + block.data.length <= maxBytes && adjacent(run.data, block.data)) {
      run.data = Buffer.from(run.data.buffer, run.data.byteOffset, run.data.length + block.data.length);
      nextIndex++;
      continue;
    }
    if (run) yield run;
    run = {index: block.index, data: block.data};
    nextIndex = block.index + 1;
  }
  if (run) yield run;
}

function adjacent(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}
