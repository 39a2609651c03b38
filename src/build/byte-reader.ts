// Reads exact byte counts from a chunked stream without copying more than needed: the
// tar and cpio parsers sit on top of it and hand file contents on as zero-copy slices.
import {TskitError} from '../errors.ts';

export class ByteReader {
  private readonly source: AsyncIterator<Uint8Array>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  /** Bytes consumed so far: lets parsers name byte offsets in errors. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.source = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : fromSync(source);
  }

  private async fill(min: number): Promise<void> {
    while (this.pendingBytes < min && !this.ended) {
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (chunk.length === 0) continue;
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
  }

  /** Exactly n bytes, or null when the stream ends before any byte; a partial read is an error. */
  async readExact(n: number, what: string): Promise<Buffer | null> {
    await this.fill(n);
    if (this.pendingBytes === 0 && this.ended) return null;
    if (this.pendingBytes < n) {
      throw new TskitError(`${what}: unexpected end of data at byte ${this.offset + this.pendingBytes} (needed ${n} bytes at ${this.offset})`);
    }
    return this.take(n);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.pending[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.pending[0]!;
        const want = Math.min(n - filled, chunk.length);
        chunk.copy(out, filled, 0, want);
        filled += want;
        if (want === chunk.length) this.pending.shift();
        else this.pending[0] = chunk.subarray(want);
      }
    }
    this.pendingBytes -= n;
    this.offset += n;
    return out;
  }

  /** Yields exactly n bytes as they arrive, in slices of the underlying chunks. */
  async *window(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pendingBytes === 0) await this.fill(1);
      if (this.pendingBytes === 0) {
        throw new TskitError(`${what}: unexpected end of data at byte ${this.offset} (${left} of ${n} bytes missing)`);
      }
      const chunk = this.pending[0]!;
      const want = Math.min(left, chunk.length);
      left -= want;
      yield this.take(want);
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.window(n, what)) {
      // discard
    }
  }

  /**
   * Reads and discards everything left, so that checks a source makes at its end (a blob's
   * digest, a layer's diff_id) run even when the parser on top needs no more bytes.
   */
  async drain(): Promise<void> {
    this.offset += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (!this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else this.offset += next.value.byteLength;
    }
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.pendingBytes === 0 && this.ended;
  }
}

async function* fromSync(source: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* source;
}
