// A raw disk file as a DiskImage. Node cannot ask the file system where the holes are
// (no SEEK_DATA), so the file is read in large chunks and every all-zero 64 KiB piece is
// dropped; a chunk found all zero on the first pass is not read again on later passes.
// A chunk's buffer is read into again once it held only zeros, and, when the consumer
// allows it (reuseBuffers), also a few chunks after its extents were handed out.
//
// Reading a hole through the page cache is slow the first time (the kernel fills the cache
// with zero pages: about 340 MB/s here), while a direct (O_DIRECT) read of a hole costs
// next to nothing. So a file that is mostly holes is read directly (openDirect), into
// buffers aligned as O_DIRECT wants; its data then comes from the device, not the cache.
import {constants} from 'node:fs';
import {open, type FileHandle} from 'node:fs/promises';
import type {RandomAccessFile} from './random-access.ts';
import {TskitError} from '../errors.ts';
import {isZero} from './blocks.ts';
import type {DiskExtent, DiskImage} from './disk.ts';

const CHUNK = 4 * 1024 * 1024;
const PIECE = 64 * 1024;
const READ_AHEAD = 2;
/** Alignment O_DIRECT may ask of addresses, offsets and lengths (the largest logical block size in use). */
const ALIGN = 4096;

export interface RawDiskOptions {
  /** The virtual size (at least `length`, a multiple of 512); the rest reads as zeros. */
  size?: number;
  /** How many bytes at the start of the file are the disk (default: all; a fixed VHD ends with its footer). */
  length?: number;
  /**
   * Read into a chunk's buffer again once the consumer has pulled the extents of the two
   * chunks after it. Only for consumers that copy what they keep longer (encodeDisk does).
   */
  reuseBuffers?: boolean;
  /** The same file opened with O_DIRECT (openDirect), to read through instead of `file`. */
  direct?: RandomAccessFile;
  /** Stops reading (checked per chunk: long stretches of holes yield no extent to stop at). */
  signal?: AbortSignal;
}

/**
 * The file opened with O_DIRECT when more than half of it is holes and the file system
 * supports direct reads; undefined otherwise (the caller closes what it gets).
 */
export async function openDirect(path: string, file: FileHandle): Promise<FileHandle | undefined> {
  const stats = await file.stat();
  if (stats.blocks * 512 > stats.size / 2 || constants.O_DIRECT === undefined) return undefined;
  return open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => undefined);
}

/** A CHUNK-byte buffer whose address suits O_DIRECT, found by trying offsets (JS cannot see addresses). */
async function alignedChunk(direct: RandomAccessFile): Promise<Buffer | undefined> {
  const raw = Buffer.allocUnsafeSlow(CHUNK + ALIGN);
  for (let shift = 0; shift < ALIGN; shift += 16) {
    try {
      await direct.read(raw, shift, ALIGN, 0);
      return raw.subarray(shift, shift + CHUNK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') return undefined;
    }
  }
  return undefined;
}

/** Chunks whose extents a reuseBuffers consumer may still hold: the one before the current. */
const HELD_CHUNKS = 2;

/** `file` (kept open by the caller) as a disk of its own size rounded up to whole sectors. */
export async function rawDiskImage(file: RandomAccessFile, path: string, options: RawDiskOptions = {}): Promise<DiskImage> {
  const stats = await file.stat();
  const fileSize = options.length ?? stats.size;
  if (fileSize > stats.size) throw new TskitError(`${path} is ${stats.size} bytes, shorter than the ${fileSize}-byte disk it should hold`);
  const size = options.size ?? Math.ceil(fileSize / 512) * 512;
  if (size % 512 !== 0 || size < fileSize) throw new Error(`raw disk size ${size} must be whole sectors and hold the ${fileSize}-byte file`);
  const zeroChunks = new Set<number>();
  let passes = 0;
  let direct = options.direct;
  // buffers free to read into: a chunk that held only zeros gave its buffer to no one, and
  // a pass leaves its buffers to the next (the consumer is done with them)
  const spare: Buffer[] = [];
  return {
    size,
    async *extents(): AsyncGenerator<DiskExtent> {
      const now = await file.stat();
      if (now.size !== stats.size || now.mtimeMs !== stats.mtimeMs) throw new TskitError(`${path} changed while it was being read`);
      const firstPass = passes++ === 0;
      const chunks: number[] = [];
      for (let at = 0; at < fileSize; at += CHUNK) if (firstPass || !zeroChunks.has(at)) chunks.push(at);
      const held: Buffer[] = [];
      // every buffer is CHUNK bytes (a chunk at the end of the file uses its start)
      const read = async (at: number): Promise<{buffer: Buffer; view: Buffer}> => {
        const length = Math.min(CHUNK, fileSize - at);
        let buffer = spare.pop();
        if (!buffer && direct) {
          buffer = await alignedChunk(direct);
          if (!buffer) direct = undefined;
        }
        buffer ??= Buffer.allocUnsafeSlow(CHUNK);
        let got = 0;
        while (got < length) {
          let bytesRead: number;
          if (direct && (at + got) % ALIGN === 0) {
            try {
              // whole aligned blocks: the file's end gives a short read
              ({bytesRead} = await direct.read(buffer, got, Math.min(CHUNK - got, Math.ceil((length - got) / ALIGN) * ALIGN), at + got));
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
              direct = undefined; // the file system wants something else: read through the cache
              continue;
            }
          } else {
            ({bytesRead} = await file.read(buffer, got, length - got, at + got));
          }
          if (bytesRead === 0) throw new TskitError(`${path}: the file ended at byte ${at + got}, before its size of ${fileSize} bytes (it shrank while being read)`);
          got += bytesRead;
        }
        const view = buffer.subarray(0, Math.ceil(length / 512) * 512);
        view.fill(0, length); // the last sector's tail, past the end of the file
        return {buffer, view};
      };
      // reads run ahead, so the disk (and the thread pool) work while a chunk is examined
      const ahead: Array<Promise<{buffer: Buffer; view: Buffer}>> = [];
      let issued = 0;
      const refill = () => {
        while (ahead.length < READ_AHEAD && issued < chunks.length) {
          const pending = read(chunks[issued++]!);
          pending.catch(() => {});
          ahead.push(pending);
        }
      };
      refill();
      for (let i = 0; i < chunks.length; i++) {
        options.signal?.throwIfAborted();
        const at = chunks[i]!;
        const {buffer: whole, view: buffer} = await ahead.shift()!;
        refill();
        let runStart = -1;
        let any = false;
        for (let p = 0; ; p += PIECE) {
          const end = Math.min(p, buffer.length);
          const data = p < buffer.length && !isZero(buffer.subarray(p, p + PIECE));
          if (data && runStart < 0) runStart = p;
          if (!data && runStart >= 0) {
            yield {offset: at + runStart, data: buffer.subarray(runStart, end)};
            any = true;
            runStart = -1;
          }
          if (p >= buffer.length) break;
        }
        if (!any) {
          if (firstPass) zeroChunks.add(at);
          spare.push(whole);
        } else if (options.reuseBuffers) {
          held.push(whole);
          if (held.length > HELD_CHUNKS) spare.push(held.shift()!);
        }
      }
      if (options.reuseBuffers) spare.push(...held.splice(0));
    },
  };
}
