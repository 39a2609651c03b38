// gzip on every core, the way pigz does it: the input is cut into blocks, each deflated on
// libuv's thread pool with the previous block's last 32 KiB as its dictionary and ended by
// a sync flush, so the pieces join into one ordinary deflate stream (one gzip member, read
// by every gunzip, the kernel's initramfs unpacker included). Output depends only on the
// input and the settings, never on timing.
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
    const submit = (block: Buffer, last: boolean) => {
      crc = crc32(block, crc);
      total += block.length;
      const settings: Record<string, unknown> = {level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH};
      if (dictionary) settings.dictionary = dictionary;
      queue.push(deflateRawAsync(block, settings));
      dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([dictionary ?? Buffer.alloc(0), block]).subarray(-WINDOW);
    };

    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of source) {
      let buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      while (buffer.length > 0) {
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
