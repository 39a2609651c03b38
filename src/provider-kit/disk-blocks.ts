// A DiskImage cut into what an upload API takes, all-zero pieces left out, so a zero
// region is never read twice, sent or stored:
// - diskBlocks: fixed, aligned blocks (EBS PutSnapshotBlock: 512 KiB), zero-padded where
//   no extent covers them: the same cut the container encoders make (formats/blocks.ts).
// - diskRanges: the extents themselves, split at `maxBytes`, with zero stretches dropped
//   (Azure Put Page: 512-byte pages, at most 4 MiB a request).
import {isZero} from '../formats/blocks.ts';
import type {DiskImage} from '../formats/disk.ts';

export {nonZeroBlocks as diskBlocks, isZero, type DiskBlock} from '../formats/blocks.ts';

export interface DiskRange {
  /** Byte offset on the disk (a multiple of 512). */
  offset: number;
  /** At most maxBytes, a multiple of 512; a view into the extent (copy what you keep past the next range). */
  data: Buffer;
}

/**
 * The disk's non-zero bytes as ranges of at most `maxBytes` (a multiple of 512), in order,
 * views into the extents (no copy). Zero stretches of `granule` bytes (aligned on the
 * disk) are dropped: a fresh page blob or disk reads as zeros there already.
 */
export async function* diskRanges(disk: DiskImage, options: {maxBytes: number; granule?: number}): AsyncIterable<DiskRange> {
  const max = Math.floor(options.maxBytes / 512) * 512;
  const granule = options.granule ?? 64 * 1024;
  if (max <= 0 || granule % 512 !== 0 || granule <= 0) throw new Error(`diskRanges: maxBytes ${options.maxBytes} and granule ${granule} must be whole sectors`);
  for await (const extent of disk.extents()) {
    let start = -1;
    for (let at = 0; ; ) {
      // pieces end on granule boundaries of the disk, so every disk cuts the same way
      const end = at >= extent.data.length ? at : Math.min(extent.data.length, Math.floor((extent.offset + at) / granule) * granule + granule - extent.offset);
      const data = at < extent.data.length && !isZero(extent.data.subarray(at, end));
      if (data && start < 0) start = at;
      if (start >= 0 && (!data || end - start > max)) {
        for (let from = start; from < at; from += max) yield {offset: extent.offset + from, data: extent.data.subarray(from, Math.min(at, from + max))};
        start = data ? at : -1;
      }
      if (at >= extent.data.length) break;
      at = end;
    }
  }
}
