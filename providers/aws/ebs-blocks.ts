// A DiskImage cut into EBS's 512 KiB blocks, in order, all-zero blocks left out: what
// PutSnapshotBlock sends. Extents need not be block-aligned (a sector multiple is enough);
// parts of a block no extent covers are zeros.
import type {DiskImage} from '../../src/formats/disk.ts';
import {EBS_BLOCK, isZero} from './raw-disk.ts';

export interface EbsBlock {
  index: number;
  /** Exactly EBS_BLOCK bytes. */
  data: Buffer;
}

export async function* ebsBlocks(disk: DiskImage): AsyncIterable<EbsBlock> {
  let current: EbsBlock | undefined;
  const flush = function* (): Generator<EbsBlock> {
    if (current && !isZero(current.data)) yield current;
    current = undefined;
  };
  for await (const extent of disk.extents()) {
    for (let at = 0; at < extent.data.length; ) {
      const offset = extent.offset + at;
      const index = Math.floor(offset / EBS_BLOCK);
      if (current && current.index !== index) yield* flush();
      // A whole aligned block straight from the extent: no copy.
      if (!current && offset % EBS_BLOCK === 0 && extent.data.length - at >= EBS_BLOCK) {
        const data = extent.data.subarray(at, at + EBS_BLOCK);
        if (!isZero(data)) yield {index, data};
        at += EBS_BLOCK;
        continue;
      }
      current ??= {index, data: Buffer.alloc(EBS_BLOCK)};
      const within = offset - index * EBS_BLOCK;
      const n = Math.min(EBS_BLOCK - within, extent.data.length - at);
      extent.data.copy(current.data, within, at, at + n);
      at += n;
    }
  }
  yield* flush();
}
