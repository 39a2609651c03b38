// Encoders from a DiskImage to the container formats clouds and hypervisors take. The
// partitioned layout (GPT/MBR, FAT, ISO) is decided elsewhere; these only package it.
//
// Today: raw (sparse). The other formats land with the disk-formats work.
import {open, rename, rm} from 'node:fs/promises';
import {createHash} from 'node:crypto';
import {TskitError} from '../errors.ts';
import type {DiskImage} from './disk.ts';

export const CONTAINER_FORMATS = ['raw'] as const;
export type ContainerFormat = (typeof CONTAINER_FORMATS)[number] | 'vhd' | 'dynamic-vhd' | 'vhdx' | 'vmdk' | 'qcow2' | 'gcp';

export interface EncodeOptions {
  signal?: AbortSignal;
  /** Virtual bytes processed so far, of the total. */
  progress?(done: number, total: number): void;
}

export interface Encoded {
  /** Bytes of the file written. */
  size: number;
  sha256: string;
}

/** The virtual size a format's target demands it be a multiple of (Azure: whole MiB; GCE: whole GiB). */
export function sizeMultiple(format: ContainerFormat): number {
  switch (format) {
    case 'vhd':
    case 'dynamic-vhd':
      return 1024 * 1024;
    case 'gcp':
      return 1024 * 1024 * 1024;
    default:
      return 512;
  }
}

/** Writes `image` as `format` to `path` (via a temp name in the same directory, renamed at the end). */
export async function encodeDisk(format: ContainerFormat, image: DiskImage, path: string, options: EncodeOptions = {}): Promise<Encoded> {
  if (format !== 'raw') throw new TskitError(`disk format ${format} is not available yet`);
  const temp = `${path}.tskit-tmp-${process.pid}`;
  try {
    const encoded = await writeRaw(image, temp, options);
    await rename(temp, path);
    return encoded;
  } catch (error) {
    await rm(temp, {force: true});
    throw error;
  }
}

/** A sparse raw file: extents written where they belong, holes left unwritten. */
async function writeRaw(image: DiskImage, path: string, options: EncodeOptions): Promise<Encoded> {
  const file = await open(path, 'w', 0o644);
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(1024 * 1024);
  let hashed = 0;
  const hashZerosTo = (offset: number) => {
    while (hashed < offset) {
      const n = Math.min(zeros.length, offset - hashed);
      hash.update(zeros.subarray(0, n));
      hashed += n;
    }
  };
  try {
    for await (const extent of image.extents()) {
      options.signal?.throwIfAborted();
      hashZerosTo(extent.offset);
      await file.write(extent.data, 0, extent.data.length, extent.offset);
      hash.update(extent.data);
      hashed += extent.data.length;
      options.progress?.(hashed, image.size);
    }
    hashZerosTo(image.size);
    await file.truncate(image.size);
  } finally {
    await file.close();
  }
  return {size: image.size, sha256: hash.digest('hex')};
}
