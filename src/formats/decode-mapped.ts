// The shared half of the readers for sparse formats (qcow2, VHD, VHDX, VMDK): they turn
// their allocation tables into runs (this virtual range is stored at that file offset,
// maybe compressed), and this turns the runs into DiskImage extents (joining neighbours
// into large reads, reading ahead and inflating on the thread pool) and into random reads
// (readAt, for the boot probe), naming the structure and byte offset when the file does
// not hold what the tables say. Tables are read in bounded pieces, never whole, so memory
// stays flat whatever size a header claims.
import {TskitError} from '../errors.ts';
import type {DiskExtent, DiskImage} from './disk.ts';
import {orderedParallel} from './ordered-parallel.ts';
import type {RandomAccessFile} from './random-access.ts';

export interface MappedRun {
  /** Offset on the virtual disk (multiple of 512). */
  virtual: number;
  /** Offset in the file. */
  host: number;
  /** Virtual bytes (multiple of 512). */
  length: number;
  /** Stored compressed: `bytes` in the file inflate to at least `length`. */
  compressed?: {bytes: number; inflate(data: Buffer): Promise<Buffer>};
  /** What the run is, for error messages ("grain 12", "cluster at virtual offset 65536"). */
  what: string;
}

/** What a sparse reader learns from its headers: the disk's size and where its data is. */
export interface Mapping {
  /** Virtual size in bytes (a multiple of 512). */
  size: number;
  /** The variant read ("v3", "dynamic", "streamOptimized", ...). */
  variant: string;
  /** Runs in ascending virtual order, starting with the one that holds `from` (or the first after it). */
  runs(from: number): AsyncIterable<MappedRun>;
}

const MAX_READ = 4 * 1024 * 1024;
/** No single structure a reader asks for is larger (tables are read in pieces far below this). */
const MAX_STRUCTURE = 64 * 1024 * 1024;
const IN_FLIGHT = 8;
/** Bytes of a table read at once. */
export const TABLE_PIECE = 1024 * 1024;

export class DiskFile {
  readonly file: RandomAccessFile;
  readonly path: string;
  readonly size: number;
  readonly format: string;

  constructor(file: RandomAccessFile, path: string, size: number, format: string) {
    this.file = file;
    this.path = path;
    this.size = size;
    this.format = format;
  }

  /** A TskitError naming the file and format. */
  corrupt(message: string): TskitError {
    return new TskitError(`${this.path}: not a valid ${this.format} image: ${message}`);
  }

  unsupported(message: string): TskitError {
    return new TskitError(`${this.path}: ${this.format} image: ${message}`);
  }

  /** Exactly `length` bytes at `offset`, or an error naming `what` when the file is shorter. */
  async read(offset: number, length: number, what: string): Promise<Buffer> {
    this.within(offset, length, what);
    if (length > MAX_STRUCTURE) throw this.corrupt(`${what} at byte ${offset} claims ${length} bytes, more than any valid image holds in one structure`);
    return this.readInto(Buffer.allocUnsafeSlow(length), offset, what);
  }

  /** Fills `buffer` from `offset`, or fails naming `what`. */
  async readInto(buffer: Buffer, offset: number, what: string): Promise<Buffer> {
    const length = buffer.length;
    this.within(offset, length, what);
    let got = 0;
    while (got < length) {
      const {bytesRead} = await this.file.read(buffer, got, length - got, offset + got);
      if (bytesRead === 0) throw this.corrupt(`${what}: the file ended at byte ${offset + got} while reading it`);
      got += bytesRead;
    }
    return buffer;
  }

  /** Fails unless [offset, offset + length) lies inside the file, naming `what` and where it was found. */
  within(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + length) || offset + length > this.size) {
      throw this.corrupt(`${what} at byte ${offset} (${length} bytes) lies past the end of the file (${this.size} bytes); the image is truncated or its tables are damaged`);
    }
  }
}

/**
 * A table of fixed-size entries read in TABLE_PIECE pieces as they are needed: memory stays
 * at one piece however many entries a header claims. Entries never straddle a piece (their
 * size divides it); `holds`/`load` then the sync readers, so a loop over millions of entries
 * awaits once per piece, not per entry.
 */
export class TableReader {
  private readonly disk: DiskFile;
  private readonly offset: number;
  private readonly bytes: number;
  private readonly what: string;
  private buffer: Buffer | undefined;
  private piece: Buffer | undefined;
  private pieceStart = -1;

  constructor(disk: DiskFile, offset: number, bytes: number, what: string) {
    disk.within(offset, bytes, what);
    this.disk = disk;
    this.offset = offset;
    this.bytes = bytes;
    this.what = what;
  }

  /** Whether the entry at `at` is in the piece in memory (then the sync readers below need no load). */
  holds(at: number): boolean {
    return this.piece !== undefined && at >= this.pieceStart && at < this.pieceStart + this.piece.length;
  }

  /** Reads the piece holding `at` (into the same buffer each time). */
  async load(at: number): Promise<void> {
    const start = Math.floor(at / TABLE_PIECE) * TABLE_PIECE;
    const length = Math.min(TABLE_PIECE, this.bytes - start);
    this.buffer ??= Buffer.allocUnsafeSlow(Math.min(TABLE_PIECE, this.bytes));
    this.piece = undefined;
    this.piece = await this.disk.readInto(this.buffer.subarray(0, length), this.offset + start, this.what);
    this.pieceStart = start;
  }

  /** A big-endian u64 entry from the loaded piece (call load first unless holds). */
  u64be(at: number): bigint {
    return this.piece!.readBigUInt64BE(at - this.pieceStart);
  }

  u64le(at: number): bigint {
    return this.piece!.readBigUInt64LE(at - this.pieceStart);
  }

  u32be(at: number): number {
    return this.piece!.readUInt32BE(at - this.pieceStart);
  }

  u32le(at: number): number {
    return this.piece!.readUInt32LE(at - this.pieceStart);
  }

  /** File offset of the entry at `at`, for messages. */
  where(at: number): number {
    return this.offset + at;
  }
}

/** The DiskImage and random reads of a sparse image. */
export function mappedDisk(disk: DiskFile, mapping: Mapping, signal?: AbortSignal): {image: DiskImage; readAt(offset: number, length: number): Promise<Buffer>} {
  return {
    image: {size: mapping.size, extents: () => readMapped(disk, mapping.runs(0), signal)},
    async readAt(offset, length) {
      const out = Buffer.alloc(length);
      const end = Math.min(offset + length, mapping.size);
      if (offset >= end) return out;
      for await (const run of mapping.runs(offset)) {
        if (run.virtual >= end) break;
        const from = Math.max(offset, run.virtual);
        const to = Math.min(end, run.virtual + run.length);
        if (to <= from) continue;
        const data = run.compressed ? await readRun(disk, run) : await disk.read(run.host + (from - run.virtual), to - from, run.what);
        data.copy(out, from - offset, run.compressed ? from - run.virtual : 0, run.compressed ? to - run.virtual : to - from);
      }
      return out;
    },
  };
}

/** Extents for `runs` (ascending, non-overlapping virtual ranges). */
export async function* readMapped(disk: DiskFile, runs: AsyncIterable<MappedRun> | Iterable<MappedRun>, signal?: AbortSignal): AsyncGenerator<DiskExtent> {
  const reads = orderedParallel(joinRuns(runs), (run) => readRun(disk, run), IN_FLIGHT);
  for await (const {item: run, result: data} of reads) {
    signal?.throwIfAborted();
    yield {offset: run.virtual, data};
  }
}

async function readRun(disk: DiskFile, run: MappedRun): Promise<Buffer> {
  if (!run.compressed) return disk.read(run.host, run.length, run.what);
  const bytes = Math.min(run.compressed.bytes, disk.size - run.host);
  const stored = await disk.read(run.host, bytes, run.what);
  let inflated: Buffer;
  try {
    inflated = await run.compressed.inflate(stored);
  } catch (error) {
    throw disk.corrupt(`${run.what} at byte ${run.host} does not decompress (${(error as Error).message})`);
  }
  if (inflated.length < run.length) throw disk.corrupt(`${run.what} at byte ${run.host} decompresses to ${inflated.length} bytes, not ${run.length}`);
  return inflated.subarray(0, run.length);
}

async function* joinRuns(runs: AsyncIterable<MappedRun> | Iterable<MappedRun>): AsyncGenerator<MappedRun> {
  let pending: MappedRun | undefined;
  let lastEnd = 0;
  for await (const run of runs) {
    if (run.length <= 0) continue;
    if (run.virtual < lastEnd) throw new Error(`mapped runs out of order at virtual offset ${run.virtual}`);
    lastEnd = run.virtual + run.length;
    if (pending && !pending.compressed && !run.compressed && pending.virtual + pending.length === run.virtual && pending.host + pending.length === run.host && pending.length + run.length <= MAX_READ) {
      pending = {...pending, length: pending.length + run.length};
      continue;
    }
    if (pending) yield pending;
    pending = run;
    // a big block is read in pieces, so memory stays bounded
    while (!pending.compressed && pending.length > MAX_READ) {
      yield {...pending, length: MAX_READ};
      pending = {...pending, virtual: pending.virtual + MAX_READ, host: pending.host + MAX_READ, length: pending.length - MAX_READ};
    }
  }
  if (pending) yield pending;
}
