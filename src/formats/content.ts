// Byte sources that disk layouts place at offsets: small buffers tskit generates (boot
// sectors, FATs, directories) and files read from disk only while the extents are produced
// (the kernel, the initrd), so a layout never holds a large file in memory.
import {createReadStream} from 'node:fs';
import {TskitError} from '../errors.ts';
import {SECTOR, type DiskExtent} from './disk.ts';

export interface Content {
  size: number;
  /** The bytes, exactly `size` of them; each call starts again. */
  chunks(): AsyncIterable<Buffer>;
}

export function bufferContent(data: Buffer): Content {
  return {
    size: data.length,
    async *chunks() {
      yield data;
    },
  };
}

/** `size` bytes of the file at `path` from `start`; the file must still hold them when read. */
export function fileContent(path: string, size: number, start = 0): Content {
  return {
    size,
    async *chunks() {
      if (size === 0) return;
      let read = 0;
      for await (const chunk of createReadStream(path, {start, end: start + size - 1, highWaterMark: 1024 * 1024})) {
        read += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (read !== size) throw new TskitError(`${path}: expected ${size} bytes from offset ${start}, read ${read} (the file changed during the build?)`);
    },
  };
}

export function concatContent(parts: Content[]): Content {
  return {
    size: parts.reduce((sum, part) => sum + part.size, 0),
    async *chunks() {
      for (const part of parts) yield* part.chunks();
    },
  };
}

/** Content whose bytes are produced on demand by `generate` (e.g. a FAT, a chunk at a time). */
export function generatedContent(size: number, generate: () => Iterable<Buffer> | AsyncIterable<Buffer>): Content {
  return {size, chunks: async function* () {
    let produced = 0;
    for await (const chunk of generate()) {
      produced += chunk.length;
      yield chunk;
    }
    if (produced !== size) throw new Error(`generated content: produced ${produced} bytes, expected ${size}`);
  }};
}

/** A piece of content at a byte offset (a multiple of 512) of a disk or volume. */
export interface Region {
  offset: number;
  content: Content;
}

/** Shifts regions placed inside a volume to where the volume sits on the disk. */
export function shiftRegions(regions: Region[], by: number): Region[] {
  return regions.map((region) => ({offset: region.offset + by, content: region.content}));
}

const EXTENT_BYTES = 1024 * 1024;

/**
 * The extents a DiskImage yields for regions: sorted, checked for overlap, cut into pieces of
 * at most 1 MiB, each padded with zeros to whole sectors.
 */
export async function* regionExtents(regions: Region[], diskSize: number): AsyncGenerator<DiskExtent> {
  const sorted = regions.filter((region) => region.content.size > 0).sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const region of sorted) {
    if (region.offset % SECTOR !== 0) throw new Error(`layout: a region starts at ${region.offset}, not on a sector boundary`);
    if (region.offset < end) throw new Error(`layout: regions overlap at byte ${region.offset}`);
    end = region.offset + Math.ceil(region.content.size / SECTOR) * SECTOR;
    if (end > diskSize) throw new Error(`layout: a region ends at byte ${end}, past the disk's ${diskSize}`);
  }
  for (const region of sorted) {
    let offset = region.offset;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = function* (all: boolean): Generator<DiskExtent> {
      while (pendingBytes >= EXTENT_BYTES || (all && pendingBytes > 0)) {
        const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const take = all && pendingBytes < EXTENT_BYTES ? pendingBytes : EXTENT_BYTES;
        let data = joined.subarray(0, take);
        const rest = joined.subarray(take);
        if (data.length % SECTOR !== 0) data = Buffer.concat([data, Buffer.alloc(SECTOR - (data.length % SECTOR))]);
        yield {offset, data};
        offset += data.length;
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      }
    };
    for await (const chunk of region.content.chunks()) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      // copy out of the source's buffer only when an extent is complete
      yield* flush(false);
    }
    yield* flush(true);
  }
}
