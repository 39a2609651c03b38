// raw: the disk byte for byte. Zero blocks become holes, so the file is sparse on disk.
import {blockRuns, nonZeroBlocks, type DiskBlock} from './blocks.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';

/** The unit of zero detection (and of the fixed VHD's fingerprint). */
const BLOCK = 64 * 1024;

export async function* encodeRaw(image: DiskImage, context: EncodeContext, onBlock?: (block: DiskBlock) => void): AsyncGenerator<Piece> {
  let at = 0;
  const blocks = nonZeroBlocks(image, BLOCK, {signal: context.signal, progress: context.progress});
  for await (const run of blockRuns(onBlock ? tap(blocks, onBlock) : blocks)) {
    const offset = run.index * BLOCK;
    if (offset > at) yield offset - at;
    const data = run.data.subarray(0, Math.min(run.data.length, image.size - offset));
    yield data;
    at = offset + data.length;
  }
  if (image.size > at) yield image.size - at;
}

async function* tap(blocks: AsyncIterable<DiskBlock>, onBlock: (block: DiskBlock) => void): AsyncGenerator<DiskBlock> {
  for await (const block of blocks) {
    onBlock(block);
    yield block;
  }
}
