// Disks for the container-format tests: mixed content (text, pseudo-random bytes, zeros,
// small writes at odd places), sizes that are not multiples of any format's block, as raw
// files and as DiskImages cut into irregular extents; and qemu-img, the real reader every
// output is checked against. Test material.
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {writeFile} from 'node:fs/promises';
import type {DiskExtent, DiskImage} from '../../src/formats/disk.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic incompressible bytes. */
export function pseudoRandom(length: number, seed: string): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < length; at += 32) {
    block.copy(out, at, 0, Math.min(32, length - at));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * A disk of `size` bytes: a text boot area, a pseudo-random region crossing block
 * boundaries, long zero stretches, a text region, single sectors scattered at offsets that
 * fit no format's block grid, and a last sector of data (the end must survive rounding).
 */
export function mixedDisk(size: number, seed = 'tskit'): Buffer {
  const disk = Buffer.alloc(size);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(40));
  for (let at = 0; at < 96 * KiB; at += text.length) text.copy(disk, at, 0, Math.min(text.length, 96 * KiB - at));
  if (size > 2 * MiB + 4096) pseudoRandom(Math.min(3 * MiB + 5 * 512, size - 2 * MiB - 4096), seed).copy(disk, MiB + 3 * 512);
  for (let i = 0; i < 7; i++) {
    const at = Math.floor(((i + 1) * size) / 9 / 512) * 512 + 512 * (i * 37 % 61);
    if (at + 512 <= size) pseudoRandom(512, `${seed}-${i}`).copy(disk, at);
  }
  pseudoRandom(512, `${seed}-end`).copy(disk, size - 512);
  return disk;
}

export async function writeMixedDisk(path: string, size: number, seed?: string): Promise<Buffer> {
  const disk = mixedDisk(size, seed);
  await writeFile(path, disk);
  return disk;
}

/**
 * `disk` as a DiskImage whose extents skip all-zero sectors and are cut at irregular,
 * sector-aligned places (at most `maxExtent` bytes), as a partition layout might give them.
 */
export function memoryDiskImage(disk: Buffer, maxExtent = 200 * 512): DiskImage {
  return {
    size: disk.length,
    async *extents(): AsyncGenerator<DiskExtent> {
      let start = -1;
      let cut = 0;
      for (let at = 0; at <= disk.length; at += 512) {
        const data = at < disk.length && disk.subarray(at, at + 512).some((b) => b !== 0);
        if (data && start < 0) start = at;
        const long = start >= 0 && at - start >= maxExtent - 512 * (cut++ % 7);
        if (start >= 0 && (!data || long)) {
          yield {offset: start, data: Buffer.from(disk.subarray(start, at))};
          start = data ? at : -1;
        }
      }
    },
  };
}

export function qemuImg(args: string[]): string {
  return execFileSync('qemu-img', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
}

export interface QemuInfo {
  format: string;
  'virtual-size': number;
  'format-specific'?: {type: string; data: Record<string, unknown>};
}

export function qemuInfo(path: string, format?: string): QemuInfo {
  return JSON.parse(qemuImg(['info', '--output=json', ...(format ? ['-f', format] : []), path])) as QemuInfo;
}

/** qemu-img compare of `path` (as `format`) against the raw disk `raw`; the message when they differ. */
export function qemuCompare(raw: string, path: string, format: string): {identical: boolean; message: string} {
  try {
    return {identical: true, message: qemuImg(['compare', '-f', 'raw', '-F', format, raw, path]).trim()};
  } catch (error) {
    const e = error as {stdout?: string; stderr?: string};
    return {identical: false, message: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim()};
  }
}

/** The qemu-img driver name of each container format. */
export const QEMU_DRIVER: Record<string, string> = {
  raw: 'raw',
  aws: 'raw',
  vhd: 'vpc',
  'dynamic-vhd': 'vpc',
  vhdx: 'vhdx',
  vmdk: 'vmdk',
  qcow2: 'qcow2',
};
