// Opens an existing disk image of any format tskit reads (raw, VHD, VHDX, VMDK, qcow2) as a
// DiskImage, for `tskit convert`. The format comes from the file's magic bytes unless the
// caller names it; a file with no magic is raw.
import {open, type FileHandle} from 'node:fs/promises';
import {TskitError} from '../errors.ts';
import type {DiskImage} from './disk.ts';
import {DiskFile} from './decode-mapped.ts';
import {qcow2DiskImage} from './decode-qcow2.ts';
import {openDirect, rawDiskImage} from './decode-raw.ts';
import {vhdDiskImage} from './decode-vhd.ts';
import {vhdxDiskImage} from './decode-vhdx.ts';
import {vmdkDiskImage} from './decode-vmdk.ts';

export const INPUT_FORMATS = ['raw', 'vhd', 'vhdx', 'vmdk', 'qcow2'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

export interface OpenedDisk {
  image: DiskImage;
  format: InputFormat;
  close(): Promise<void>;
}

export interface OpenDiskOptions {
  format?: InputFormat;
  signal?: AbortSignal;
  /** Let raw readers reuse their buffers (see RawDiskOptions.reuseBuffers): only for encodeDisk-like consumers. */
  reuseBuffers?: boolean;
}

export async function openDisk(path: string, options: OpenDiskOptions = {}): Promise<OpenedDisk> {
  let file;
  let direct: FileHandle | undefined;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw new TskitError(`cannot open ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw new TskitError(`${path} is not a regular file`);
    if (stats.size === 0) throw new TskitError(`${path} is empty`);
    const head = Buffer.alloc(Math.min(512, stats.size));
    await file.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(512, stats.size));
    await file.read(tail, 0, tail.length, stats.size - tail.length);
    const format = options.format ?? sniffDiskFormat(head, tail);
    // raw data (raw, fixed VHD) is read directly when the file is mostly holes
    direct = format === 'raw' || format === 'vhd' ? await openDirect(path, file) : undefined;
    const disk = new DiskFile(file, path, stats.size, format === 'vhd' ? 'VHD' : format === 'vhdx' ? 'VHDX' : format === 'vmdk' ? 'VMDK' : format);
    const raw = {reuseBuffers: options.reuseBuffers ?? false, ...(direct ? {direct} : {}), ...(options.signal ? {signal: options.signal} : {})};
    const image = await (format === 'qcow2'
      ? qcow2DiskImage(disk, options.signal)
      : format === 'vhd'
        ? vhdDiskImage(disk, raw)
        : format === 'vhdx'
          ? vhdxDiskImage(disk, options.signal)
          : format === 'vmdk'
            ? vmdkDiskImage(disk, options.signal)
            : rawDiskImage(file, path, raw));
    const opened = file;
    const openedDirect = direct;
    return {
      image,
      format,
      close: async () => {
        await openedDirect?.close();
        await opened.close();
      },
    };
  } catch (error) {
    await direct?.close();
    await file.close();
    throw error;
  }
}

/** The format a disk's first and last 512 bytes name; raw when none does. */
export function sniffDiskFormat(head: Buffer, tail: Buffer): InputFormat {
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
  if (head.toString('latin1', 0, 8) === 'vhdxfile') return 'vhdx';
  if (head.toString('latin1', 0, 4) === 'KDMV' || head.toString('latin1', 0, 21) === '# Disk DescriptorFile') return 'vmdk';
  // dynamic VHDs start with a copy of the footer; fixed ones only end with it
  if (head.toString('latin1', 0, 8) === 'conectix' || tail.toString('latin1', 0, 8) === 'conectix') return 'vhd';
  return 'raw';
}
