// Encoders from a DiskImage to the container formats clouds and hypervisors take. The
// partitioned layout (GPT/MBR, FAT, ISO) is decided elsewhere; these only package it.
// Every encoder streams: the disk is read once (twice for the formats whose tables come
// first), zero blocks are never stored, and the output is written front to back under a
// temporary name that becomes `path` only when it is complete.
import {randomBytes} from 'node:crypto';
import {rename, rm} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import {TskitError} from '../errors.ts';
import {describeBytes, MAX_DISK_SIZE, type DiskImage} from './disk.ts';
import {GCP_MAX_DISK} from './decode-gcp.ts';
import type {EncodeContext, Encoder} from './encoder.ts';
import {FileSink} from './file-sink.ts';
import {encodeGcpTarball} from './gcp-tar.ts';
import {sourceDateEpoch} from './identity.ts';
import {encodeQcow2} from './qcow2.ts';
import {encodeRaw} from './raw.ts';
import {encodeDynamicVhd, encodeFixedVhd} from './vhd.ts';
import {encodeVhdx} from './vhdx.ts';
import {encodeVmdk} from './vmdk.ts';

export const CONTAINER_FORMATS = ['raw', 'aws', 'vhd', 'dynamic-vhd', 'vhdx', 'vmdk', 'qcow2', 'gcp'] as const;
export type ContainerFormat = (typeof CONTAINER_FORMATS)[number];

const ENCODERS: Record<ContainerFormat, Encoder> = {
  raw: encodeRaw,
  aws: encodeRaw,
  vhd: encodeFixedVhd,
  'dynamic-vhd': encodeDynamicVhd,
  vhdx: encodeVhdx,
  vmdk: encodeVmdk,
  qcow2: encodeQcow2,
  gcp: encodeGcpTarball,
};

/** Formats that read the disk twice: once for the tables (and ids) that come first, once to write. */
const TWO_PASS = new Set<ContainerFormat>(['dynamic-vhd', 'vhdx', 'vmdk', 'qcow2']);

export interface EncodeOptions {
  signal?: AbortSignal;
  /** Virtual bytes processed so far, of the total; called at most every 100 ms, and at the end. */
  progress?(done: number, total: number): void;
  /** Compute the output's sha256 (default true). */
  sha256?: boolean;
  /** Deflate level for vmdk and gcp, 1-9 (default 6, zlib's default, as qemu-img and gzip use). */
  level?: number;
  /** Seconds since 1970 recorded where a format keeps a time (default: SOURCE_DATE_EPOCH, else LinuxKit's epoch). */
  epoch?: number;
  /**
   * The file name the output will finally have, when `path` is itself a staging name (the
   * VMDK descriptor names its extent file: a temporary name there breaks the image and its
   * reproducibility). Default: `path`'s own name.
   */
  name?: string;
}

export interface Encoded {
  /** Bytes of the file written. */
  size: number;
  /** Its sha256 (hex); empty when the options turned hashing off. */
  sha256: string;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/**
 * The largest virtual disk each output holds, and why: the format's specification, or the
 * cloud the format is for. Checked before anything is written.
 */
export const MAX_SIZES: Record<ContainerFormat, {bytes: number; why: string}> = {
  raw: {bytes: MAX_DISK_SIZE, why: 'the largest disk tskit handles'},
  aws: {bytes: 64 * TiB, why: "EBS's largest volume (StartSnapshot takes at most 65536 GiB)"},
  vhd: {bytes: 32 * TiB, why: 'the largest fixed VHD Azure takes for a managed disk'},
  'dynamic-vhd': {bytes: 2040 * GiB, why: "the VHD format's limit (Hyper-V, qemu-img)"},
  vhdx: {bytes: 64 * TiB, why: "the VHDX specification's limit"},
  vmdk: {bytes: 62 * TiB, why: "vSphere's largest virtual disk"},
  qcow2: {bytes: 2 * 1024 * TiB, why: "qemu's limit for 64 KiB clusters: an L1 table of at most 32 MiB"},
  gcp: {bytes: GCP_MAX_DISK, why: "GCE's largest disk"},
};

/** Fails, in one line, when `size` is beyond what `format` holds. */
export function checkMaxSize(format: ContainerFormat, size: number, what = 'this disk'): void {
  const max = MAX_SIZES[format];
  if (size > max.bytes) throw new TskitError(`${/^[aeiou]/.test(format) ? 'an' : 'a'} ${format} disk holds at most ${describeBytes(max.bytes)} (${max.why}); ${what} is ${describeBytes(size)}`);
}

/**
 * The virtual size a format's target demands it be a multiple of: Azure takes fixed VHDs
 * of whole MiB, GCE images and EBS volumes are whole GiB.
 */
export function sizeMultiple(format: ContainerFormat): number {
  switch (format) {
    case 'vhd':
    case 'dynamic-vhd':
      return MiB;
    case 'gcp':
    case 'aws':
      return GiB;
    default:
      return 512;
  }
}

/** The smallest size at least `size` that `format` accepts. */
export function roundSize(format: ContainerFormat, size: number): number {
  const multiple = sizeMultiple(format);
  return Math.max(multiple, Math.ceil(size / multiple) * multiple);
}

/**
 * Writes `image` as `format` to `path` (via a temp name in the same directory, renamed at
 * the end). It holds an extent's bytes at most until it has pulled the extents after it
 * that lie within the next few MiB of the disk, and copies anything it keeps longer (the
 * write buffers, deflate inputs), so a source may reuse its buffers (RawDiskOptions.reuseBuffers).
 */
export async function encodeDisk(format: ContainerFormat, image: DiskImage, path: string, options: EncodeOptions = {}): Promise<Encoded> {
  const encoder = ENCODERS[format];
  if (!encoder) throw new TskitError(`unknown disk format ${format} (known: ${CONTAINER_FORMATS.join(', ')})`);
  checkMaxSize(format, image.size);
  const multiple = sizeMultiple(format);
  if (image.size <= 0 || image.size % multiple !== 0) {
    throw new TskitError(`a ${format} disk must be a non-zero whole number of ${describeSize(multiple)}; this one is ${image.size} bytes`);
  }
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new TskitError(`deflate level must be 1 to 9, not ${level}`);

  let lastReport = 0;
  const context: EncodeContext = {
    name: options.name ?? basename(path),
    epoch: options.epoch ?? sourceDateEpoch(),
    level,
    ...(options.signal ? {signal: options.signal} : {}),
    progress(offset, phase = 'write') {
      const now = Date.now();
      if (options.progress && now - lastReport >= 100) {
        lastReport = now;
        // a two-pass encoder's scan counts as the first half
        const done = !TWO_PASS.has(format) ? offset : phase === 'scan' ? offset / 2 : image.size / 2 + offset / 2;
        options.progress(Math.floor(Math.min(done, image.size)), image.size);
      }
    },
  };

  const temp = join(dirname(path), `.${basename(path)}.tskit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const sink = await FileSink.open(temp, {hash: options.sha256 !== false}).catch((error: NodeJS.ErrnoException) => {
    throw new TskitError(`cannot write ${path}: ${error.code ?? error.message}`, {cause: error});
  });
  try {
    for await (const piece of encoder(image, context)) {
      options.signal?.throwIfAborted();
      await sink.put(piece);
    }
    const written = await sink.finish();
    await rename(temp, path);
    options.progress?.(image.size, image.size);
    return {size: written.size, sha256: written.sha256 ?? ''};
  } catch (error) {
    await sink.abort();
    await rm(temp, {force: true});
    // a file system error while writing (a full disk, say) is the user's to fix, not a bug
    const code = (error as NodeJS.ErrnoException).code;
    if (!(error instanceof TskitError) && typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new TskitError(`writing ${path}: ${(error as Error).message}`, {cause: error});
    throw error;
  }
}

function describeSize(bytes: number): string {
  if (bytes === GiB) return 'GiB';
  if (bytes === MiB) return 'MiB';
  return `${bytes}-byte sectors`;
}
