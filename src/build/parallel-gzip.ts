// gzip on every core, the way pigz does it: the input is cut into blocks, each deflated on
// libuv's thread pool with the previous block's last 32 KiB as its dictionary and ended by
// a sync flush, so the pieces join into one ordinary deflate stream (one gzip member, read
// by every gunzip, the kernel's initramfs unpacker included). Output depends only on the
// input and the settings, never on timing. A whole block of zeros after 32 KiB of zeros
// always deflates to the same bytes, so it is deflated once and its CRC-32 advanced
// arithmetically: the long zero runs of disk images cost next to nothing.
import {promisify} from 'node:util';
import {constants, crc32, deflateRaw} from 'node:zlib';

const deflateRawAsync = promisify(deflateRaw) as (buffer: Buffer, options: object) => Promise<Buffer>;

const WINDOW = 32 * 1024;

export interface ParallelGzipOptions {
  level?: number;
  /** Input bytes per block; pigz uses 128 KiB. */
  blockSize?: number;
  /** Blocks in flight at once. */
  inFlight?: number;
}

export function parallelGzip(options: ParallelGzipOptions = {}) {
  const level = options.level ?? 6;
  const blockSize = options.blockSize ?? 128 * 1024;
  const inFlight = options.inFlight ?? 8;

  return async function* gzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
    yield Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);

    let crc = 0;
    let total = 0;
    let dictionary: Buffer | undefined;
    const queue: Array<Promise<Buffer>> = [];
    const zeroBlock = Buffer.alloc(blockSize);
    const zeroWindow = zeroBlock.subarray(0, Math.min(WINDOW, blockSize));
    let dictionaryZero = false;
    let zeroDeflated: Promise<Buffer> | undefined;
    let zeroCrc: ((crc: number) => number) | undefined;
    // room for a whole block's output in one go: zlib's default 16 KiB output chunks would
    // cost a round trip between the thread pool and the main thread for each of them
    const chunkSize = blockSize + 4096;
    const submit = (block: Buffer, last: boolean) => {
      total += block.length;
      if (!last && dictionaryZero && (block === zeroBlock || (block.length === blockSize && block.equals(zeroBlock)))) {
        zeroCrc ??= crc32ZeroExtender(blockSize);
        crc = zeroCrc(crc);
        zeroDeflated ??= deflateRawAsync(zeroBlock, {level, chunkSize, finishFlush: constants.Z_SYNC_FLUSH, dictionary: zeroWindow});
        queue.push(zeroDeflated);
        return;
      }
      crc = crc32(block, crc);
      const settings: Record<string, unknown> = {level, chunkSize, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH};
      if (dictionary) settings.dictionary = dictionary;
      queue.push(deflateRawAsync(block, settings));
      dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([dictionary ?? Buffer.alloc(0), block]).subarray(-WINDOW);
      dictionaryZero = dictionary.length === WINDOW && dictionary.equals(zeroWindow);
    };

    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let pendingZero = true;
    for await (const chunk of source) {
      let buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      while (buffer.length > 0) {
        const take = Math.min(blockSize - pendingBytes, buffer.length);
        const piece = buffer.subarray(0, take);
        pendingZero &&= piece.equals(zeroBlock.subarray(0, take));
        pending.push(piece);
        pendingBytes += take;
        buffer = buffer.subarray(take);
        if (pendingBytes === blockSize) {
          // zeros need no copy (the shared zero block is their content); anything else is
          // copied: the caller may reuse its chunk memory, and the block outlives this loop
          submit(pendingZero ? zeroBlock : Buffer.concat(pending, pendingBytes), false);
          pending = [];
          pendingBytes = 0;
          pendingZero = true;
          while (queue.length >= inFlight) yield await queue.shift()!;
        }
      }
    }
    submit(Buffer.concat(pending, pendingBytes), true);
    while (queue.length > 0) yield await queue.shift()!;

    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(total % 2 ** 32, 4);
    yield trailer;
  };
}

/**
 * CRC-32 over `length` zero bytes as a function of the CRC before them. It is affine in the
 * incoming CRC (zeros add no data terms), so 33 CRCs of the zero block define it exactly.
 */
export function crc32ZeroExtender(length: number): (crc: number) => number {
  const block = Buffer.alloc(length);
  const base = crc32(block, 0);
  const columns = new Uint32Array(32);
  for (let bit = 0; bit < 32; bit++) columns[bit] = (crc32(block, (1 << bit) >>> 0) ^ base) >>> 0;
  return (crc) => {
    let result = base;
    for (let bit = 0; bit < 32; bit++) if ((crc >>> bit) & 1) result ^= columns[bit]!;
    return result >>> 0;
  };
}
