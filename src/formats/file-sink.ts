// Writes an encoder's output to a file strictly in order, hashing it as it goes. Every piece
// is copied into one of a few recycled write buffers, so the sink holds no reference to the
// encoder's memory once put() returns (sources may then reuse their buffers) and no fresh
// memory is touched per write. Runs of zeros become holes (the file stays sparse wherever
// the format has zeros), and several writes stay in flight so the encoder never waits for
// the disk.
import type {FileHandle} from 'node:fs/promises';
import {open} from 'node:fs/promises';
import {isZero, zeros} from './blocks.ts';
import {createDigest, type Digest} from './digest.ts';

/** What encoders yield: bytes, or a count of zero bytes (left as a hole). */
export type Piece = Buffer | number;

const BUFFER = 1024 * 1024;
const HOLE_UNIT = 64 * 1024;
const IN_FLIGHT = 6;

export interface SinkResult {
  size: number;
  sha256?: string;
}

export class FileSink {
  private readonly file: FileHandle;
  private readonly digest: Digest | undefined;
  /** File offset of the bytes in `buffer`. */
  private position = 0;
  private buffer: Buffer;
  private used = 0;
  private readonly spare: Buffer[] = [];
  private readonly writes: Array<Promise<Buffer>> = [];
  private failure: unknown;

  private constructor(file: FileHandle, digest: Digest | undefined) {
    this.file = file;
    this.digest = digest;
    this.buffer = Buffer.allocUnsafeSlow(BUFFER);
  }

  static async open(path: string, options: {hash: boolean}): Promise<FileSink> {
    const file = await open(path, 'w', 0o644);
    try {
      return new FileSink(file, options.hash ? await createDigest() : undefined);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  async put(piece: Piece): Promise<void> {
    if (this.failure) throw this.failure;
    if (typeof piece === 'number') return this.zeros(piece);
    if (piece.length === 0) return;
    await this.digest?.update(piece);
    if (piece.length < 2 * HOLE_UNIT) return this.append(piece);
    // whole zero units of large pieces stay holes
    for (let at = 0; at < piece.length; at += HOLE_UNIT) {
      const unit = piece.subarray(at, at + HOLE_UNIT);
      if (unit.length === HOLE_UNIT && isZero(unit)) await this.skip(HOLE_UNIT);
      else await this.append(unit);
    }
  }

  private async append(data: Buffer): Promise<void> {
    for (let at = 0; at < data.length; ) {
      const take = Math.min(BUFFER - this.used, data.length - at);
      data.copy(this.buffer, this.used, at, at + take);
      this.used += take;
      at += take;
      if (this.used === BUFFER) await this.flush();
    }
  }

  private async zeros(count: number): Promise<void> {
    if (count <= 0) return;
    if (count < HOLE_UNIT) return this.put(zeros(count));
    await this.digest?.zeros(count);
    await this.skip(count);
  }

  /** Leaves `count` bytes unwritten (they read as zeros). */
  private async skip(count: number): Promise<void> {
    await this.flush();
    this.position += count;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const data = this.buffer;
    const length = this.used;
    const at = this.position;
    this.position += length;
    this.used = 0;
    this.writes.push(
      this.file.write(data, 0, length, at).then(
        () => data,
        (error: unknown) => {
          this.failure ??= error;
          return data;
        },
      ),
    );
    while (this.writes.length >= IN_FLIGHT) this.spare.push(await this.writes.shift()!);
    if (this.failure) throw this.failure;
    this.buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(BUFFER);
  }

  /** Completes the file (trailing zeros become its hole-filled end) and closes it. */
  async finish(): Promise<SinkResult> {
    try {
      await this.flush();
      await Promise.all(this.writes.splice(0));
      if (this.failure) throw this.failure;
      await this.file.truncate(this.position);
      const sha256 = await this.digest?.digest();
      return {size: this.position, ...(sha256 === undefined ? {} : {sha256})};
    } finally {
      this.digest?.close();
      await this.file.close();
    }
  }

  /** Stops after a failure (the caller removes the file). */
  async abort(): Promise<void> {
    await Promise.allSettled(this.writes.splice(0));
    this.digest?.close();
    await this.file.close().catch(() => {});
  }
}
