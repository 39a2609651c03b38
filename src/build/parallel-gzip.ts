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
    const submit = (block: Buffer, last: boolean) => {
      total += block.length;
      if (!last && dictionaryZero && block.length === blockSize && block.equals(zeroBlock)) {
        zeroCrc ??= crc32ZeroExtender(blockSize);
        crc = zeroCrc(crc);
        zeroDeflated ??= deflateRawAsync(zeroBlock, {level, finishFlush: constants.Z_SYNC_FLUSH, dictionary: zeroWindow});
        queue.push(zeroDeflated);
        return;
      }
      crc = crc32(block, crc);
      const settings: Record<string, unknown> = {level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH};
      if (dictionary) settings.dictionary = dictionary;
      queue.push(deflateRawAsync(block, settings));
      dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([dictionary ?? Buffer.alloc(0), block]).subarray(-WINDOW);
      dictionaryZero = dictionary.length === WINDOW && dictionary.equals(zeroWindow);
    };

    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of source) {
      let buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      while (buffer.length > 0) {
        if (pendingBytes === 0 && dictionaryZero && buffer.length >= blockSize && buffer.subarray(0, blockSize).equals(zeroBlock)) {
          // zeros need no copy: their deflated form is already known
          submit(buffer.subarray(0, blockSize), false);
          buffer = buffer.subarray(blockSize);
          while (queue.length >= inFlight) yield await queue.shift()!;
          continue;
        }
        const take = Math.min(blockSize - pendingBytes, buffer.length);
        pending.push(buffer.subarray(0, take));
        pendingBytes += take;
        buffer = buffer.subarray(take);
        if (pendingBytes === blockSize) {
          // copy: the caller may reuse its chunk memory, and the block outlives this loop
          submit(Buffer.concat(pending, pendingBytes), false);
          pending = [];
          pendingBytes = 0;
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
