// A VMDK sparse extent (monolithicSparse, streamOptimized) read as a DiskImage: the grain
// directory and tables say which grains are stored; unallocated and zeroed grains are never
// read. Compressed grains (streamOptimized) are inflated one at a time. Also random access
// (`readAt`) for the boot-mode probe. Layout per VMware's "Virtual Disk Format 5.0".
import {open, stat, type FileHandle} from 'node:fs/promises';
import {inflateSync} from 'node:zlib';
import {TskitError} from '../../src/errors.ts';
import type {DiskExtent, DiskImage} from '../../src/formats/disk.ts';

const SECTOR = 512;
const GD_AT_END = 0xffffffffffffffffn;
const FLAG_ZEROED_GTE = 1 << 2;
const FLAG_COMPRESSED = 1 << 16;

export interface VmdkDisk extends DiskImage {
  /** Bytes of the virtual disk. */
  size: number;
  readAt(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

interface Header {
  flags: number;
  capacity: number;
  grainSectors: number;
  gtesPerGt: number;
  gdOffset: bigint;
  compressed: boolean;
}

function parseHeader(buffer: Buffer, path: string): Header {
  if (buffer.subarray(0, 4).toString('latin1') !== 'KDMV') throw new TskitError(`${path}: not a VMDK sparse extent`);
  const flags = buffer.readUInt32LE(8);
  const header = {
    flags,
    capacity: Number(buffer.readBigUInt64LE(12)),
    grainSectors: Number(buffer.readBigUInt64LE(20)),
    gtesPerGt: buffer.readUInt32LE(44),
    gdOffset: buffer.readBigUInt64LE(56),
    compressed: (flags & FLAG_COMPRESSED) !== 0 && buffer.readUInt16LE(77) === 1,
  };
  if (header.grainSectors < 8 || header.grainSectors > 2048 || header.gtesPerGt === 0 || header.gtesPerGt > 4096) throw new TskitError(`${path}: VMDK header has a grain of ${header.grainSectors} sectors and ${header.gtesPerGt} entries per table`);
  return header;
}

export async function openVmdk(path: string): Promise<VmdkDisk> {
  const text = Buffer.alloc(21);
  const file: FileHandle = await open(path, 'r');
  try {
    await file.read(text, 0, 21, 0);
    if (text.toString('latin1') === '# Disk DescriptorFile') throw new TskitError(`${path} is a VMDK descriptor whose data lives in separate extent files; push a single-file VMDK (monolithicSparse or streamOptimized), or use --method import`);
    const first = Buffer.alloc(SECTOR);
    await file.read(first, 0, SECTOR, 0);
    let header = parseHeader(first, path);
    if (header.gdOffset === GD_AT_END) {
      // streamOptimized: the real header is the footer, the second-to-last sector.
      const {size} = await stat(path);
      const footer = Buffer.alloc(SECTOR);
      await file.read(footer, 0, SECTOR, size - 2 * SECTOR);
      header = parseHeader(footer, path);
      if (header.gdOffset === GD_AT_END) throw new TskitError(`${path}: VMDK footer has no grain directory`);
    }
    const grainBytes = header.grainSectors * SECTOR;
    const size = header.capacity * SECTOR;
    const tables = Math.ceil(header.capacity / header.grainSectors / header.gtesPerGt);
    const directory = Buffer.alloc(tables * 4);
    await file.read(directory, 0, directory.length, Number(header.gdOffset) * SECTOR);

    const tableCache = new Map<number, Buffer>();
    const table = async (t: number): Promise<Buffer | undefined> => {
      const sector = directory.readUInt32LE(t * 4);
      if (sector === 0) return undefined;
      let gt = tableCache.get(t);
      if (!gt) {
        gt = Buffer.alloc(header.gtesPerGt * 4);
        await file.read(gt, 0, gt.length, sector * SECTOR);
        if (tableCache.size > 64) tableCache.clear();
        tableCache.set(t, gt);
      }
      return gt;
    };
    /** Sector of grain `g`, or 0 when it reads as zeros. */
    const grainSector = async (g: number): Promise<number> => {
      const gt = await table(Math.floor(g / header.gtesPerGt));
      if (!gt) return 0;
      const sector = gt.readUInt32LE((g % header.gtesPerGt) * 4);
      return sector === 1 && header.flags & FLAG_ZEROED_GTE ? 0 : sector;
    };
    const readGrain = async (g: number, sector: number): Promise<Buffer> => {
      const want = Math.min(grainBytes, size - g * grainBytes);
      if (!header.compressed) {
        const data = Buffer.alloc(want);
        await file.read(data, 0, want, sector * SECTOR);
        return data;
      }
      const marker = Buffer.alloc(12);
      await file.read(marker, 0, 12, sector * SECTOR);
      const lba = Number(marker.readBigUInt64LE(0));
      const length = marker.readUInt32LE(8);
      if (lba !== g * header.grainSectors || length > grainBytes * 2) throw new TskitError(`${path}: corrupt VMDK grain ${g} at sector ${sector} (says LBA ${lba}, ${length} bytes)`);
      const compressed = Buffer.alloc(length);
      await file.read(compressed, 0, length, sector * SECTOR + 12);
      let data: Buffer;
      try {
        data = inflateSync(compressed);
      } catch (error) {
        throw new TskitError(`${path}: VMDK grain ${g} does not inflate: ${(error as Error).message}`);
      }
      if (data.length < want) data = Buffer.concat([data, Buffer.alloc(want - data.length)]);
      return data.subarray(0, want);
    };
    const grains = Math.ceil(size / grainBytes);
    let last: {g: number; data: Buffer} | undefined;
    return {
      size,
      async *extents(): AsyncIterable<DiskExtent> {
        for (let g = 0; g < grains; g++) {
          const sector = await grainSector(g);
          if (sector === 0) continue;
          yield {offset: g * grainBytes, data: await readGrain(g, sector)};
        }
      },
      async readAt(offset: number, length: number): Promise<Buffer> {
        const out = Buffer.alloc(length);
        for (let at = offset; at < offset + length && at < size; ) {
          const g = Math.floor(at / grainBytes);
          const within = at - g * grainBytes;
          const n = Math.min(grainBytes - within, offset + length - at);
          if (last?.g !== g) {
            const sector = await grainSector(g);
            last = {g, data: sector === 0 ? Buffer.alloc(0) : await readGrain(g, sector)};
          }
          last.data.copy(out, at - offset, within, Math.min(last.data.length, within + n));
          at += n;
        }
        return out;
      },
      close: () => file.close(),
    };
  } catch (error) {
    await file.close();
    throw error;
  }
}
