// The block-device seam: every disk writer produces a DiskImage (a virtual size and its
// non-zero extents, in order), and every encoder (raw, vhd, vhdx, vmdk, qcow2, the gcp
// tarball) and every uploader (EBS blocks, Azure pages, S3 parts) consumes one. A region
// no extent covers reads as zeros and is never read, written or sent.

export const SECTOR = 512;

export interface DiskExtent {
  /** Byte offset on the virtual disk; a multiple of 512. */
  offset: number;
  /** The bytes there; a multiple of 512 long. May contain zeros (consumers may skip zero blocks). */
  data: Buffer;
}

export interface DiskImage {
  /** Virtual size in bytes; a multiple of 512. */
  size: number;
  /**
   * The disk's content as ascending, non-overlapping extents; everything between them is
   * zero. Each call starts again from the beginning (encoders may need two passes).
   */
  extents(): AsyncIterable<DiskExtent>;
}

/**
 * The largest virtual disk tskit reads or writes: 4 PiB (2^52 bytes), far beyond any cloud's
 * disk and what every format here caps at, and small enough that byte offsets stay exact
 * JavaScript numbers with room for the sums readers make.
 */
export const MAX_DISK_SIZE = 2 ** 52;

/** A human size for messages: 1 PiB, 64 TiB, 2040 GiB, 512 MiB, 300 bytes. */
export function describeBytes(bytes: number): string {
  for (const [unit, size] of [['PiB', 2 ** 50], ['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  for (const [unit, size] of [['PiB', 2 ** 50], ['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20]] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit}`;
  }
  return `${bytes} bytes`;
}
