// The tarball GCE imports an image from: a gzip'd tar in GNU's oldgnu format whose only
// member is `disk.raw`, a plain (not sparse) regular file holding the whole disk, whose size
// is a whole number of GiB. gzip runs on every core (parallelGzip); whole blocks of zeros,
// most of a disk, cost almost nothing there.
import {parallelGzip} from '../build/parallel-gzip.ts';
import {zeros} from './blocks.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';

export const GCP_MEMBER = 'disk.raw';
const BLOCK = 512;
/** GNU tar's default record: 20 blocks; archives are padded to a whole record. */
const RECORD = 20 * BLOCK;
const ZERO_RUN = 1024 * 1024;

export async function* encodeGcpTarball(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  yield* parallelGzip({level: context.level})(tarStream(image, context));
}

async function* tarStream(image: DiskImage, context: EncodeContext): AsyncGenerator<Buffer> {
  yield oldGnuHeader(GCP_MEMBER, image.size, context.epoch);
  let at = 0;
  for await (const extent of image.extents()) {
    context.signal?.throwIfAborted();
    yield* zeroRun(extent.offset - at);
    yield extent.data;
    at = extent.offset + extent.data.length;
    context.progress(at);
  }
  yield* zeroRun(image.size - at);
  const archive = BLOCK + Math.ceil(image.size / BLOCK) * BLOCK + 2 * BLOCK;
  const padding = (image.size % BLOCK ? BLOCK - (image.size % BLOCK) : 0) + 2 * BLOCK + ((RECORD - (archive % RECORD)) % RECORD);
  yield* zeroRun(padding);
}

function* zeroRun(length: number): Generator<Buffer> {
  for (; length > 0; length -= ZERO_RUN) yield zeros(Math.min(length, ZERO_RUN));
}

/** A tar header as GNU tar writes it with --format=oldgnu (sizes of 8 GiB and more in base-256). */
export function oldGnuHeader(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'latin1');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  if (size <= 0o77777777777) {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  } else {
    const value = BigInt(size);
    for (let i = 0; i < 12; i++) h[124 + 11 - i] = Number((value >> BigInt(8 * i)) & 0xffn);
    h[124] = h[124]! | 0x80;
  }
  h.write(`${Math.max(0, Math.min(mtime, 0o77777777777)).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  h.fill(0x20, 148, 156);
  h.write('0', 156, 'latin1');
  h.write('ustar  \0', 257, 'latin1');
  h.write('root', 265, 'latin1');
  h.write('root', 297, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}
