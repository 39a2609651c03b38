// Reads qcow2 (versions 2 and 3): the active L1/L2 tables map clusters, standard and
// compressed (zlib); zero clusters and unallocated ones read as zeros. Images that need
// something else (a backing file, encryption, an external data file, zstd, extended L2
// entries) are refused with a message saying so. Headers are held to qemu's own limits
// (cluster_bits 9-21, an L1 table of at most 32 MiB, the L1 index within INT_MAX), and the
// L1 table is read in pieces, so a header claiming billions of entries costs nothing.
import {promisify} from 'node:util';
import {inflateRaw} from 'node:zlib';
import {describeBytes, MAX_DISK_SIZE} from './disk.ts';
import {DiskFile, TableReader, type Mapping, type MappedRun} from './decode-mapped.ts';
import {QCOW2_MAGIC} from './qcow2.ts';

const inflateRawAsync = promisify(inflateRaw) as (data: Buffer, options: object) => Promise<Buffer>;
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const L1_RESERVED = 0x7f00_0000_0000_01ffn;
/** qemu's QCOW_MAX_L1_SIZE. */
export const QCOW2_MAX_L1_BYTES = 32 * 1024 * 1024;

export async function qcow2Mapping(disk: DiskFile): Promise<Mapping> {
  const h = await disk.read(0, 112, 'header');
  if (h.readUInt32BE(0) !== QCOW2_MAGIC) throw disk.corrupt('no qcow2 magic at byte 0');
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw disk.unsupported(`version ${version} is not supported (only 2 and 3)`);
  const backingOffset = h.readBigUInt64BE(8);
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw disk.corrupt(`cluster_bits ${clusterBits} in the header (byte 20) is outside 9-21`);
  const clusterSize = 2 ** clusterBits;
  const rawSize = h.readBigUInt64BE(24);
  if (rawSize > BigInt(MAX_DISK_SIZE)) throw disk.corrupt(`the virtual size ${rawSize} (header byte 24) is beyond ${describeBytes(MAX_DISK_SIZE)}, more than any disk tskit reads`);
  const virtualSize = Number(rawSize);
  if (h.readUInt32BE(32) !== 0) throw disk.unsupported('encrypted images are not supported');
  const l1Size = h.readUInt32BE(36);
  const rawL1Offset = h.readBigUInt64BE(40);
  if (backingOffset !== 0n) {
    const length = Math.min(h.readUInt32BE(16), 1023);
    const at = Number(backingOffset);
    const name = length > 0 && backingOffset < BigInt(disk.size) && at + length <= disk.size ? (await disk.read(at, length, 'backing file name')).toString('utf8') : '?';
    throw disk.unsupported(`it has a backing file (${name}); flatten the chain first (qemu-img convert -O qcow2 ${disk.path} flat.qcow2)`);
  }
  let compressionType = 0;
  if (version === 3) {
    const incompatible = h.readBigUInt64BE(72);
    const headerLength = h.readUInt32BE(100);
    if (headerLength < 104 || headerLength > clusterSize) throw disk.corrupt(`header_length ${headerLength} (header byte 100) is outside 104-${clusterSize}`);
    if (headerLength > 104) compressionType = h[104]!;
    if (incompatible & 2n) throw disk.corrupt('the image marks itself corrupt (incompatible feature bit 1); repair it with qemu-img check -r all');
    if (incompatible & 4n) throw disk.unsupported('images with an external data file are not supported');
    if (incompatible & 16n) throw disk.unsupported('extended L2 entries (subclusters) are not supported');
    if (incompatible & ~0x1fn) throw disk.unsupported(`unknown incompatible features 0x${incompatible.toString(16)}`);
    if (compressionType !== 0) throw disk.unsupported(`compression type ${compressionType} (zstd) is not supported; only zlib`);
  }

  const l2Entries = clusterSize / 8;
  const l1Span = clusterSize * l2Entries;
  const neededL1 = Math.ceil(virtualSize / l1Span);
  if (neededL1 > 0x7fff_ffff) throw disk.corrupt(`a ${virtualSize}-byte disk needs ${neededL1} L1 entries, more than qemu allows (the image is too big)`);
  if (l1Size * 8 > QCOW2_MAX_L1_BYTES) throw disk.corrupt(`the L1 table of ${l1Size} entries (header byte 36) is ${describeBytes(l1Size * 8)}, beyond qemu's limit of 32 MiB`);
  if (l1Size < neededL1) throw disk.corrupt(`the L1 table has ${l1Size} entries (header byte 36), a ${virtualSize}-byte disk needs ${neededL1}`);
  const l1Offset = Number(rawL1Offset);
  if (l1Size > 0 && (rawL1Offset % BigInt(clusterSize) !== 0n || rawL1Offset === 0n)) throw disk.corrupt(`the L1 table offset ${rawL1Offset} (header byte 40) is not a cluster boundary past the header`);
  const size = Math.ceil(virtualSize / 512) * 512;
  const csizeShift = 62 - (clusterBits - 8);
  const csizeMask = (1n << BigInt(clusterBits - 8)) - 1n;
  const coffsetMask = (1n << BigInt(csizeShift)) - 1n;
  const l1 = neededL1 > 0 ? new TableReader(disk, l1Offset, neededL1 * 8, 'L1 table') : undefined;

  const runs = async function* (from: number): AsyncGenerator<MappedRun> {
    for (let i = Math.floor(from / l1Span); i < neededL1; i++) {
      if (!l1!.holds(i * 8)) await l1!.load(i * 8);
      if (l1!.u32be(i * 8) === 0 && l1!.u32be(i * 8 + 4) === 0) continue; // no L2 table: the common case, without a BigInt
      const entry = l1!.u64be(i * 8);
      if (entry & L1_RESERVED) throw disk.corrupt(`L1 entry ${i} (byte ${l1!.where(i * 8)}) has reserved bits set`);
      const l2Offset = Number(entry & OFFSET_MASK);
      if (l2Offset === 0) continue;
      if (l2Offset % clusterSize !== 0) throw disk.corrupt(`L1 entry ${i} (byte ${l1!.where(i * 8)}) points at ${l2Offset}, not a cluster boundary`);
      if (l2Offset < l1Offset + neededL1 * 8 && l2Offset + clusterSize > l1Offset) throw disk.corrupt(`L1 entry ${i} (byte ${l1!.where(i * 8)}) points at byte ${l2Offset}, inside the L1 table itself`);
      const l2 = await disk.read(l2Offset, clusterSize, `L2 table ${i} (L1 entry at byte ${l1!.where(i * 8)})`);
      const first = i === Math.floor(from / l1Span) ? Math.floor((from - i * l1Span) / clusterSize) : 0;
      for (let j = first; j < l2Entries; j++) {
        const virtual = (i * l2Entries + j) * clusterSize;
        if (virtual >= size) break;
        const length = Math.min(clusterSize, size - virtual);
        const l2Entry = l2.readBigUInt64BE(j * 8);
        const where = `cluster at virtual offset ${virtual} (L2 table ${i} entry ${j}, byte ${l2Offset + j * 8})`;
        if (l2Entry & (1n << 62n)) {
          const host = Number(l2Entry & coffsetMask);
          const sectors = Number((l2Entry >> BigInt(csizeShift)) & csizeMask) + 1;
          yield {
            virtual,
            host,
            length,
            what: `compressed ${where}`,
            compressed: {bytes: sectors * 512 - (host % 512), inflate: (data) => inflateRawAsync(data, {finishFlush: 2 /* Z_SYNC_FLUSH: the stored size may overshoot */})},
          };
          continue;
        }
        if (version === 3 && l2Entry & 1n) continue; // reads as zeros
        const host = Number(l2Entry & OFFSET_MASK);
        if (host === 0) continue;
        if (host % clusterSize !== 0) throw disk.corrupt(`${where} points at ${host}, not a cluster boundary`);
        yield {virtual, host, length, what: where};
      }
    }
  };
  return {size, variant: `v${version}`, runs};
}
