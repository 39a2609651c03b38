// An output file written front to back whose header is only known at the end (squashfs and
// erofs put their superblock first): appends are batched into large writes, the header is
// written in place last, and the sha256 is taken by reading the finished file back (from the
// page cache) rather than holding anything.
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {open, type FileHandle} from 'node:fs/promises';

const BATCH = 1 << 20;

export class ImageFile {
  /** Bytes appended so far: where the next append lands. */
  position = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushed = 0;

  private readonly handle: FileHandle;
  private readonly path: string;

  private constructor(handle: FileHandle, path: string) {
    this.handle = handle;
    this.path = path;
  }

  static async create(path: string): Promise<ImageFile> {
    return new ImageFile(await open(path, 'w', 0o644), path);
  }

  async append(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.position += chunk.length;
    if (this.pendingBytes >= BATCH) await this.flush();
  }

  /** Appends zeros up to a multiple of `alignment`. */
  async pad(alignment: number): Promise<void> {
    const rest = this.position % alignment;
    if (rest !== 0) await this.append(Buffer.alloc(alignment - rest));
  }

  async writeAt(chunk: Buffer, position: number): Promise<void> {
    await this.flush();
    await this.handle.write(chunk, 0, chunk.length, position);
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < data.length) {
      const {bytesWritten} = await this.handle.write(data, done, data.length - done, this.flushed + done);
      done += bytesWritten;
    }
    this.flushed += data.length;
  }

  /** Drops everything from `position` on (it must be at or before the current position). */
  async truncate(position: number): Promise<void> {
    if (position > this.position) throw new Error(`truncate to ${position} past the end (${this.position})`);
    await this.flush();
    await this.handle.truncate(position);
    this.position = position;
    this.flushed = position;
  }

  /** Closes the file; returns its size and sha256. */
  async finish(): Promise<{size: number; sha256: string}> {
    await this.flush();
    await this.handle.close();
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(this.path, {highWaterMark: BATCH})) hash.update(chunk as Buffer);
    return {size: this.position, sha256: hash.digest('hex')};
  }

  async abandon(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

/** Cuts a byte stream into pieces of exactly `size` bytes (the last may be shorter); each piece is a fresh buffer. */
export async function* fixedBlocks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let block = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(size - fill, chunk.length - at);
      block.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield block;
        block = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield block.subarray(0, fill);
}
