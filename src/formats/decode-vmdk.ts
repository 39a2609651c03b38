// Reads a single-file sparse VMDK (monolithicSparse, streamOptimized): the sparse extent
// header (or, for streams that defer it, the footer), the grain directory and tables, then
// grains, plain or deflated (with or without markers). Descriptor-only VMDKs whose data
// lives in other files are refused with a message saying so. Headers are held to qemu's
// limits (at most 512 entries per grain table, at most 32M grain directory entries), and the
// directory is read in pieces.
//
// Streams come two ways: VMware's and tskit's defer the directory to a footer before an
// end-of-stream marker; qemu-img's (subformat=streamOptimized) put the directory up front
// and may end without a marker (an incompressible last grain overruns the sector where qemu
// would have put it). Only the first kind needs its last 1536 bytes checked.
import {promisify} from 'node:util';
import {inflate} from 'node:zlib';
import {describeBytes, MAX_DISK_SIZE} from './disk.ts';
import {DiskFile, TableReader, type Mapping, type MappedRun} from './decode-mapped.ts';
import {VMDK_FLAGS, VMDK_GD_AT_END, VMDK_MAGIC, VMDK_MARKER} from './vmdk.ts';

const inflateAsync = promisify(inflate) as (data: Buffer, options: object) => Promise<Buffer>;
/** qemu's limits: "L2 table size too big", "L1 size too big". */
const MAX_GTES = 512;
const MAX_GD_ENTRIES = 32 * 1024 * 1024;

interface SparseHeader {
  version: number;
  flags: number;
  capacity: bigint;
  grainSectors: bigint;
  gtes: number;
  gdOffset: bigint;
  compressAlgorithm: number;
}

function parseHeader(h: Buffer): SparseHeader {
  return {
    version: h.readUInt32LE(4),
    flags: h.readUInt32LE(8),
    capacity: h.readBigUInt64LE(12),
    grainSectors: h.readBigUInt64LE(20),
    gtes: h.readUInt32LE(44),
    gdOffset: h.readBigUInt64LE(56),
    compressAlgorithm: h.readUInt16LE(77),
  };
}

export async function vmdkMapping(disk: DiskFile): Promise<Mapping> {
  const lead = await disk.read(0, Math.min(disk.size, 32), 'sparse extent header');
  if (lead.toString('latin1', 0, 21) === '# Disk DescriptorFile') {
    throw disk.unsupported('this is a descriptor whose data lives in other files (flat or split extents); give the extent file, or convert the set with qemu-img first');
  }
  if (lead.length < 4 || lead.readUInt32LE(0) !== VMDK_MAGIC) throw disk.corrupt('no "KDMV" sparse extent header at byte 0');
  const first = await disk.read(0, 512, 'sparse extent header');
  let header = parseHeader(first);
  let headerAt = 0;
  if (header.gdOffset === VMDK_GD_AT_END) {
    // a stream: the footer, 1 KiB before the end-of-stream marker at the end, has the directory's place
    if (disk.size < 2048) throw disk.corrupt(`a stream needs a footer and end-of-stream marker, but the file is only ${disk.size} bytes`);
    const tail = await disk.read(disk.size - 1536, 1536, 'footer');
    const footerMarker = {size: tail.readUInt32LE(8), type: tail.readUInt32LE(12)};
    const eos = {sectors: tail.readBigUInt64LE(1024), size: tail.readUInt32LE(1032), type: tail.readUInt32LE(1036)};
    if (footerMarker.size !== 0 || footerMarker.type !== VMDK_MARKER.footer || tail.readUInt32LE(512) !== VMDK_MAGIC || eos.sectors !== 0n || eos.size !== 0 || eos.type !== VMDK_MARKER.endOfStream) {
      throw disk.corrupt(`the header defers to a footer, but there is no footer marker, footer and end-of-stream marker in the last 1536 bytes (from byte ${disk.size - 1536}); the stream is truncated`);
    }
    header = parseHeader(tail.subarray(512, 1024));
    headerAt = disk.size - 1024;
    if (header.gdOffset === VMDK_GD_AT_END) throw disk.corrupt(`the footer at byte ${headerAt} does not say where the grain directory is`);
  }
  if (header.version < 1 || header.version > 3) throw disk.unsupported(`sparse extent version ${header.version} is not supported (1-3)`);
  const compressed = (header.flags & VMDK_FLAGS.compressed) !== 0;
  const markers = (header.flags & VMDK_FLAGS.markers) !== 0;
  if (compressed && header.compressAlgorithm !== 1) throw disk.unsupported(`compression algorithm ${header.compressAlgorithm} is not supported (only deflate, 1)`);
  if (header.grainSectors < 1n || header.grainSectors > 2048n || (header.grainSectors & (header.grainSectors - 1n)) !== 0n) {
    throw disk.corrupt(`grain size ${header.grainSectors} sectors (header byte 20, at byte ${headerAt + 20}) is not a power of two up to 2048`);
  }
  if (header.gtes < 1 || header.gtes > MAX_GTES) throw disk.corrupt(`${header.gtes} grain table entries per table (header byte 44, at byte ${headerAt + 44}) is outside 1-${MAX_GTES}, qemu's limit`);
  if (header.capacity * 512n > BigInt(MAX_DISK_SIZE)) throw disk.corrupt(`the capacity of ${header.capacity} sectors (header byte 12, at byte ${headerAt + 12}) is beyond ${describeBytes(MAX_DISK_SIZE)}, more than any disk tskit reads`);
  const grainSectors = Number(header.grainSectors);
  const gtes = header.gtes;
  const grainBytes = grainSectors * 512;
  const size = Number(header.capacity) * 512;
  const grains = Math.ceil(Number(header.capacity) / grainSectors);
  const tables = Math.ceil(grains / gtes);
  if (tables > MAX_GD_ENTRIES) throw disk.corrupt(`a capacity of ${header.capacity} sectors in grains of ${grainSectors} sectors needs ${tables} grain directory entries, beyond qemu's limit of ${MAX_GD_ENTRIES}`);
  if (header.gdOffset * 512n > BigInt(disk.size)) throw disk.corrupt(`the grain directory at sector ${header.gdOffset} (header byte 56, at byte ${headerAt + 56}) lies past the end of the file (${disk.size} bytes)`);
  const gdAt = Number(header.gdOffset) * 512;
  const gd = tables > 0 ? new TableReader(disk, gdAt, tables * 4, 'grain directory') : undefined;
  const variant = compressed ? 'streamOptimized' : 'monolithicSparse';

  const runs = async function* (from: number): AsyncGenerator<MappedRun> {
    const firstGrain = Math.floor(from / grainBytes);
    for (let t = Math.floor(firstGrain / gtes); t < tables; t++) {
      if (!gd!.holds(t * 4)) await gd!.load(t * 4);
      const gtSector = gd!.u32le(t * 4);
      if (gtSector === 0) continue;
      const gtAt = gtSector * 512;
      const gt = await disk.read(gtAt, gtes * 4, `grain table ${t} (directory entry at byte ${gd!.where(t * 4)})`);
      for (let e = t === Math.floor(firstGrain / gtes) ? firstGrain % gtes : 0; e < gtes; e++) {
        const grain = t * gtes + e;
        if (grain >= grains) break;
        const sector = gt.readUInt32LE(e * 4);
        if (sector <= 1) continue; // unallocated, or a zeroed grain
        const virtual = grain * grainBytes;
        const length = Math.min(grainBytes, size - virtual);
        const host = sector * 512;
        const what = `grain ${grain} (table ${t} entry ${e}, byte ${gtAt + e * 4})`;
        if (!compressed) {
          yield {virtual, host, length, what};
          continue;
        }
        const headerBytes = markers ? 12 : 4;
        const lead = await disk.read(host, headerBytes, what);
        if (markers && lead.readBigUInt64LE(0) !== BigInt(grain * grainSectors)) {
          throw disk.corrupt(`${what} at byte ${host} is marked as sector ${lead.readBigUInt64LE(0)}, not ${grain * grainSectors}`);
        }
        const bytes = lead.readUInt32LE(markers ? 8 : 0);
        if (bytes === 0 || bytes > grainBytes * 2 + 1024) throw disk.corrupt(`${what} at byte ${host} claims ${bytes} compressed bytes`);
        yield {virtual, host: host + headerBytes, length, what, compressed: {bytes, inflate: (data) => inflateAsync(data, {})}};
      }
    }
  };
  return {size, variant, runs};
}
