// What the disk readers read from: a file, or bytes in memory (a test's or a fuzzer's
// buffer), behind the few calls of FileHandle they use, so one reader serves both.

export interface RandomAccessFile {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset` (FileHandle.read's contract). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{bytesRead: number}>;
  /** Size now; `blocks` (512-byte units allocated) and `mtimeMs` when the source has them. */
  stat(): Promise<{size: number; blocks?: number; mtimeMs?: number}>;
  close(): Promise<void>;
}

/** Bytes in memory as a RandomAccessFile (not copied: do not change them while reading). */
export class MemoryFile implements RandomAccessFile {
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{bytesRead: number}> {
    if (position >= this.bytes.length || length <= 0) return {bytesRead: 0};
    const n = Math.min(length, this.bytes.length - position);
    buffer.set(this.bytes.subarray(position, position + n), offset);
    return {bytesRead: n};
  }

  async stat(): Promise<{size: number; blocks: number; mtimeMs: number}> {
    return {size: this.bytes.length, blocks: Math.ceil(this.bytes.length / 512), mtimeMs: 0};
  }

  async close(): Promise<void> {}
}
