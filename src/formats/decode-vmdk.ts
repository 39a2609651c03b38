// Reads a single-file sparse VMDK (monolithicSparse, streamOptimized) as a DiskImage: the
// sparse extent header (or, for streams, the footer it defers to), the grain directory and
// tables, then grains, plain or deflated (with or without markers). Descriptor-only VMDKs
// whose data lives in other files are refused with a message saying so.
import {promisify} from 'node:util';
import {inflate} from 'node:zlib';
import type {DiskImage} from './disk.ts';
import {DiskFile, readMapped, type MappedRun} from './decode-mapped.ts';
import {VMDK_FLAGS, VMDK_GD_AT_END, VMDK_MAGIC, VMDK_MARKER} from './vmdk.ts';

const inflateAsync = promisify(inflate) as (data: Buffer, options: object) => Promise<Buffer>;

interface SparseHeader {
  version: number;
  flags: number;
  capacity: number;
  grainSectors: number;
  gtes: number;
  gdOffset: bigint;
  compressAlgorithm: number;
}

function parseHeader(h: Buffer): SparseHeader {
  return {
    version: h.readUInt32LE(4),
    flags: h.readUInt32LE(8),
    capacity: Number(h.readBigUInt64LE(12)),
    grainSectors: Number(h.readBigUInt64LE(20)),
    gtes: h.readUInt32LE(44),
    gdOffset: h.readBigUInt64LE(56),
    compressAlgorithm: h.readUInt16LE(77),
  };
}

export async function vmdkDiskImage(disk: DiskFile, signal?: AbortSignal): Promise<DiskImage> {
  const lead = await disk.read(0, Math.min(disk.size, 32), 'sparse extent header');
  if (lead.toString('latin1', 0, 21) === '# Disk DescriptorFile') {
    throw disk.unsupported('this is a descriptor whose data lives in other files (flat or split extents); give the extent file, or convert the set with qemu-img first');
  }
  if (lead.length < 4 || lead.readUInt32LE(0) !== VMDK_MAGIC) throw disk.corrupt('no "KDMV" sparse extent header at byte 0');
  const first = await disk.read(0, 512, 'sparse extent header');
  let header = parseHeader(first);
  if (header.version < 1 || header.version > 3) throw disk.unsupported(`sparse extent version ${header.version} is not supported (1-3)`);
  if (header.gdOffset === VMDK_GD_AT_END) {
    // a stream: the footer, 1 KiB before the end-of-stream marker at the end, has the directory's place
    if (disk.size < 2048) throw disk.corrupt(`a stream needs a footer and end-of-stream marker, but the file is only ${disk.size} bytes`);
    const tail = await disk.read(disk.size - 1536, 1536, 'footer');
    const footerMarker = {sectors: tail.readBigUInt64LE(0), size: tail.readUInt32LE(8), type: tail.readUInt32LE(12)};
    const eos = {sectors: tail.readBigUInt64LE(1024), size: tail.readUInt32LE(1032), type: tail.readUInt32LE(1036)};
    if (footerMarker.size !== 0 || footerMarker.type !== VMDK_MARKER.footer || tail.readUInt32LE(512) !== VMDK_MAGIC || eos.sectors !== 0n || eos.size !== 0 || eos.type !== VMDK_MARKER.endOfStream) {
      throw disk.corrupt(`the header defers to a footer, but there is no footer marker, footer and end-of-stream marker in the last 1536 bytes (from byte ${disk.size - 1536}); the stream is truncated`);
    }
    header = parseHeader(tail.subarray(512, 1024));
    if (header.gdOffset === VMDK_GD_AT_END) throw disk.corrupt(`the footer at byte ${disk.size - 1024} does not say where the grain directory is`);
  }
  const compressed = (header.flags & VMDK_FLAGS.compressed) !== 0;
  const markers = (header.flags & VMDK_FLAGS.markers) !== 0;
  if (markers && disk.size >= 1024) {
    const last = await disk.read(disk.size - 512, 512, 'end-of-stream marker');
    if (!last.every((b) => b === 0)) throw disk.corrupt(`the stream does not end with an end-of-stream marker (the last 512 bytes, from byte ${disk.size - 512}); it is truncated`);
  }
  if (compressed && header.compressAlgorithm !== 1) throw disk.unsupported(`compression algorithm ${header.compressAlgorithm} is not supported (only deflate, 1)`);
  if (header.grainSectors < 1 || header.grainSectors > 2048 || (header.grainSectors & (header.grainSectors - 1)) !== 0) {
    throw disk.corrupt(`grain size ${header.grainSectors} sectors (header byte 20) is not a power of two up to 2048`);
  }
  if (header.gtes < 1 || header.gtes > 65536) throw disk.corrupt(`${header.gtes} grain table entries per table (header byte 44) is out of range`);
  const grainBytes = header.grainSectors * 512;
  const size = header.capacity * 512;
  const grains = Math.ceil(header.capacity / header.grainSectors);
  const tables = Math.ceil(grains / header.gtes);
  const gdAt = Number(header.gdOffset) * 512;

  const runs = async function* (): AsyncGenerator<MappedRun> {
    const gd = await disk.read(gdAt, tables * 4, 'grain directory');
    for (let t = 0; t < tables; t++) {
      const gtSector = gd.readUInt32LE(t * 4);
      if (gtSector === 0) continue;
      const gt = await disk.read(gtSector * 512, header.gtes * 4, `grain table ${t} (directory entry at byte ${gdAt + t * 4})`);
      for (let e = 0; e < header.gtes; e++) {
        const grain = t * header.gtes + e;
        if (grain >= grains) break;
        const sector = gt.readUInt32LE(e * 4);
        if (sector <= 1) continue; // unallocated, or a zeroed grain
        const virtual = grain * grainBytes;
        const length = Math.min(grainBytes, size - virtual);
        const host = sector * 512;
        const what = `grain ${grain} (table ${t} entry ${e}, byte ${gtSector * 512 + e * 4})`;
        if (!compressed) {
          yield {virtual, host, length, what};
          continue;
        }
        const headerBytes = markers ? 12 : 4;
        const lead = await disk.read(host, headerBytes, what);
        if (markers && Number(lead.readBigUInt64LE(0)) !== grain * header.grainSectors) {
          throw disk.corrupt(`${what} at byte ${host} is marked as sector ${lead.readBigUInt64LE(0)}, not ${grain * header.grainSectors}`);
        }
        const bytes = lead.readUInt32LE(markers ? 8 : 0);
        if (bytes === 0 || bytes > grainBytes * 2 + 1024) throw disk.corrupt(`${what} at byte ${host} claims ${bytes} compressed bytes`);
        yield {virtual, host: host + headerBytes, length, what, compressed: {bytes, inflate: (data) => inflateAsync(data, {})}};
      }
    }
  };
  return {size, extents: () => readMapped(disk, runs(), signal)};
}
