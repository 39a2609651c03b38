// The shared half of the readers for sparse formats (qcow2, VHD, VHDX, VMDK): they turn
// their allocation tables into runs (this virtual range is stored at that file offset,
// maybe compressed), and readMapped turns the runs into DiskImage extents, joining
// neighbours into large reads, reading ahead and inflating on the thread pool, and naming
// the structure and byte offset when the file does not hold what the tables say.
import type {FileHandle} from 'node:fs/promises';
import {TskitError} from '../errors.ts';
import type {DiskExtent} from './disk.ts';
import {orderedParallel} from './ordered-parallel.ts';

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

const MAX_READ = 4 * 1024 * 1024;
const IN_FLIGHT = 8;

export class DiskFile {
  readonly file: FileHandle;
  readonly path: string;
  readonly size: number;
  readonly format: string;

  constructor(file: FileHandle, path: string, size: number, format: string) {
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
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw this.corrupt(`${what} at byte ${offset} (${length} bytes) lies past the end of the file (${this.size} bytes); the image is truncated or its tables are damaged`);
    }
    const buffer = Buffer.allocUnsafeSlow(length);
    let got = 0;
    while (got < length) {
      const {bytesRead} = await this.file.read(buffer, got, length - got, offset + got);
      if (bytesRead === 0) throw this.corrupt(`${what}: the file ended at byte ${offset + got} while reading it`);
      got += bytesRead;
    }
    return buffer;
  }
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
