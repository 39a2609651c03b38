// The one way to open a disk image: any format tskit writes or converts (raw, the aws disk,
// an ISO, fixed and dynamic VHD, VHDX, monolithicSparse and streamOptimized VMDK, qcow2,
// the GCE tarball), from a file or from bytes in memory, as an OpenedDisk: a DiskImage
// (virtual size and non-zero extents, streamed), random reads (readAt) and the boot probe
// (boot mode and architecture, read from the disk). Providers, `tskit convert` and the
// fuzzers use only this. The format comes from the file's magic bytes unless the caller
// names it; a file with no magic is raw. Every reader names the structure and byte offset
// a bad header breaks, holds sizes to the limits qemu applies, and reads its tables in
// bounded pieces.
import {open} from 'node:fs/promises';
import {TskitError} from '../errors.ts';
import {probeBoot, type BootProbe} from './boot-probe.ts';
import {DiskFile, mappedDisk} from './decode-mapped.ts';
import {gcpTarball} from './decode-gcp.ts';
import {qcow2Mapping} from './decode-qcow2.ts';
import {openDirect, rawDiskImage} from './decode-raw.ts';
import {vhdMapping} from './decode-vhd.ts';
import {vhdxMapping} from './decode-vhdx.ts';
import {vmdkMapping} from './decode-vmdk.ts';
import {describeBytes, MAX_DISK_SIZE, type DiskImage} from './disk.ts';
import {MemoryFile, type RandomAccessFile} from './random-access.ts';

export const INPUT_FORMATS = ['raw', 'iso', 'vhd', 'vhdx', 'vmdk', 'qcow2', 'gcp'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** A file path, or the image's bytes (not copied). */
export type DiskSource = string | Uint8Array;

export interface OpenedDisk {
  /** The path, or the name given for bytes in memory. */
  name: string;
  format: InputFormat;
  /** The variant within the format: fixed or dynamic (VHD), v2 or v3 (qcow2), monolithicSparse or streamOptimized (VMDK), plain or sparse (gcp), raw, iso, vhdx. */
  variant: string;
  /** Virtual size and extents (each call of extents() reads again from the start). */
  image: DiskImage;
  /** Bytes of the file (or buffer) itself. */
  fileSize: number;
  /** `length` bytes of the virtual disk at `offset` (zeros where nothing is stored or past the end). */
  readAt(offset: number, length: number): Promise<Buffer>;
  /** Boot mode and architecture, read from the disk (cached after the first call). */
  probe(): Promise<BootProbe>;
  close(): Promise<void>;
}

export interface OpenDiskOptions {
  format?: InputFormat;
  signal?: AbortSignal;
  /** Let raw readers reuse their buffers (see RawDiskOptions.reuseBuffers): only for encodeDisk-like consumers. */
  reuseBuffers?: boolean;
  /** The name messages use for bytes in memory (default "<memory>"). */
  name?: string;
}

const FORMAT_NAMES: Record<InputFormat, string> = {raw: 'raw', iso: 'ISO', vhd: 'VHD', vhdx: 'VHDX', vmdk: 'VMDK', qcow2: 'qcow2', gcp: 'GCE tarball'};

export async function openDisk(source: DiskSource, options: OpenDiskOptions = {}): Promise<OpenedDisk> {
  const path = typeof source === 'string' ? source : undefined;
  const name = path ?? options.name ?? '<memory>';
  let file: RandomAccessFile;
  if (path !== undefined) {
    try {
      file = await open(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new TskitError(`cannot open ${path}: ${code ?? (error as Error).message}`);
    }
  } else {
    file = new MemoryFile(source as Uint8Array);
  }
  let direct: RandomAccessFile | undefined;
  try {
    const stats = await file.stat();
    if (path !== undefined && !(stats as {isFile?(): boolean}).isFile?.()) throw new TskitError(`${path} is not a regular file`);
    if (stats.size === 0) throw new TskitError(`${name} is empty`);
    const head = await readHead(file, Math.min(0x8006, stats.size), 0);
    const tail = await readHead(file, Math.min(512, stats.size), stats.size - Math.min(512, stats.size));
    const format = options.format ?? sniffDiskFormat(head, tail);
    const disk = new DiskFile(file, name, stats.size, FORMAT_NAMES[format]);
    const signal = options.signal;
    let image: DiskImage;
    let variant: string;
    let readAt: OpenedDisk['readAt'];
    const raw = async (size: number | undefined, length: number): Promise<void> => {
      if (length > MAX_DISK_SIZE) throw disk.corrupt(`${length} bytes is beyond ${describeBytes(MAX_DISK_SIZE)}, more than any disk tskit reads`);
      // raw data (raw, ISO, fixed VHD) is read directly when the file is mostly holes
      direct = path !== undefined ? await openDirect(path, file as import('node:fs/promises').FileHandle) : undefined;
      image = await rawDiskImage(file, name, {reuseBuffers: options.reuseBuffers ?? false, length, ...(size !== undefined ? {size} : {}), ...(direct ? {direct} : {}), ...(signal ? {signal} : {})});
      readAt = async (offset, bytes) => {
        const out = Buffer.alloc(bytes);
        const end = Math.min(offset + bytes, length);
        for (let got = 0; offset + got < end; ) {
          const {bytesRead} = await file.read(out, got, end - offset - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return out;
      };
    };
    if (format === 'raw' || format === 'iso') {
      await raw(undefined, stats.size);
      variant = format;
    } else if (format === 'gcp') {
      const tarball = await gcpTarball(disk, signal);
      ({image, readAt} = tarball);
      variant = tarball.variant;
    } else {
      const mapping = format === 'qcow2' ? await qcow2Mapping(disk) : format === 'vhd' ? await vhdMapping(disk) : format === 'vhdx' ? await vhdxMapping(disk) : await vmdkMapping(disk);
      if ('kind' in mapping) {
        await raw(mapping.size, mapping.length);
        variant = 'fixed';
      } else {
        ({image, readAt} = mappedDisk(disk, mapping, signal));
        variant = mapping.variant;
      }
    }
    let probed: Promise<BootProbe> | undefined;
    const opened: OpenedDisk = {
      name,
      format,
      variant: variant!,
      image: image!,
      fileSize: stats.size,
      readAt: readAt!,
      probe: () => (probed ??= probeBoot(readAt)),
      close: async () => {
        await direct?.close();
        await file.close();
      },
    };
    return opened;
  } catch (error) {
    await direct?.close();
    await file.close();
    throw error;
  }
}

async function readHead(file: RandomAccessFile, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const {bytesRead} = await file.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}

/** The format a disk's first bytes (32 KiB and 6 bytes reach an ISO's volume descriptor) and last 512 bytes name; raw when none does. */
export function sniffDiskFormat(head: Buffer, tail: Buffer): InputFormat {
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
  if (head.toString('latin1', 0, 8) === 'vhdxfile') return 'vhdx';
  if (head.toString('latin1', 0, 4) === 'KDMV' || head.toString('latin1', 0, 21) === '# Disk DescriptorFile') return 'vmdk';
  // dynamic VHDs start with a copy of the footer; fixed ones only end with it
  if (head.toString('latin1', 0, 8) === 'conectix' || tail.toString('latin1', 0, 8) === 'conectix') return 'vhd';
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8) return 'gcp';
  if (head.length >= 0x8006 && head.toString('latin1', 0x8001, 0x8006) === 'CD001') return 'iso';
  return 'raw';
}

/** A format's name for messages: "a qcow2", "a VHDX", "an ISO". */
export function formatArticle(format: InputFormat): string {
  const word = FORMAT_NAMES[format];
  return `${/^[AEIOU]/i.test(word) ? 'an' : 'a'} ${word}`;
}
