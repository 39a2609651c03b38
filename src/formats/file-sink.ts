// Writes an encoder's output to a file strictly in order, hashing it as it goes. Runs of
// zeros become holes (the file stays sparse wherever the format has zeros), small pieces
// are joined into larger writes, and a few writes stay in flight so the encoder never waits
// for the disk.
import type {FileHandle} from 'node:fs/promises';
import {open} from 'node:fs/promises';
import {isZero, zeros} from './blocks.ts';
import {createDigest, type Digest} from './digest.ts';

/** What encoders yield: bytes, or a count of zero bytes (left as a hole). */
export type Piece = Buffer | number;

const BATCH = 1024 * 1024;
const HOLE_UNIT = 64 * 1024;
const IN_FLIGHT = 4;

export interface SinkResult {
  size: number;
  sha256?: string;
}

export class FileSink {
  private position = 0;
  private batch: Buffer = Buffer.allocUnsafe(BATCH);
  private batchStart = 0;
  private batchUsed = 0;
  private readonly writes: Array<Promise<unknown>> = [];
  private failure: unknown;

  private readonly file: FileHandle;
  private readonly digest: Digest | undefined;

  private constructor(file: FileHandle, digest: Digest | undefined) {
    this.file = file;
    this.digest = digest;
  }

  static async open(path: string, options: {hash: boolean}): Promise<FileSink> {
    const file = await open(path, 'w', 0o644);
    return new FileSink(file, options.hash ? await createDigest() : undefined);
  }

  /** Bytes written so far (the offset the next piece lands at). */
  get offset(): number {
    return this.position + this.batchUsed;
  }

  async put(piece: Piece): Promise<void> {
    if (this.failure) throw this.failure;
    if (typeof piece === 'number') return this.zeros(piece);
    if (piece.length === 0) return;
    await this.digest?.update(piece);
    if (piece.length < HOLE_UNIT * 2) {
      if (this.batchUsed + piece.length > BATCH) await this.flush();
      if (this.batchUsed === 0) this.batchStart = this.position;
      piece.copy(this.batch, this.batchUsed);
      this.batchUsed += piece.length;
      if (this.batchUsed === BATCH) await this.flush();
      return;
    }
    await this.flush();
    // leave whole zero units of large pieces unwritten
    let runStart = 0;
    for (let at = 0; at < piece.length; at += HOLE_UNIT) {
      const unit = piece.subarray(at, at + HOLE_UNIT);
      if (unit.length === HOLE_UNIT && isZero(unit)) {
        if (at > runStart) await this.write(piece.subarray(runStart, at));
        this.position += HOLE_UNIT;
        runStart = at + HOLE_UNIT;
      }
    }
    if (runStart < piece.length) await this.write(piece.subarray(runStart));
  }

  private async zeros(count: number): Promise<void> {
    if (count <= 0) return;
    if (count < HOLE_UNIT) return this.put(zeros(count));
    await this.flush();
    await this.digest?.zeros(count);
    this.position += count;
  }

  private async flush(): Promise<void> {
    if (this.batchUsed === 0) return;
    const full = this.batch.subarray(0, this.batchUsed);
    this.position = this.batchStart;
    this.batch = Buffer.allocUnsafe(BATCH);
    this.batchUsed = 0;
    await this.write(full);
  }

  private async write(data: Buffer): Promise<void> {
    const at = this.position;
    this.position += data.length;
    this.writes.push(
      this.file.write(data, 0, data.length, at).catch((error: unknown) => {
        this.failure ??= error;
      }),
    );
    while (this.writes.length >= IN_FLIGHT) await this.writes.shift();
    if (this.failure) throw this.failure;
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
