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
