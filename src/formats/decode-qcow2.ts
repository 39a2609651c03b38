// Reads qcow2 (versions 2 and 3) as a DiskImage: the active L1/L2 tables map clusters,
// standard and compressed (zlib); zero clusters and unallocated ones read as zeros. Images
// that need something else (a backing file, encryption, an external data file, zstd,
// extended L2 entries) are refused with a message saying so.
import {promisify} from 'node:util';
import {inflateRaw} from 'node:zlib';
import type {DiskImage} from './disk.ts';
import {DiskFile, readMapped, type MappedRun} from './decode-mapped.ts';
import {QCOW2_MAGIC} from './qcow2.ts';

const inflateRawAsync = promisify(inflateRaw) as (data: Buffer, options: object) => Promise<Buffer>;
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const L1_RESERVED = 0x7f00_0000_0000_01ffn;

export async function qcow2DiskImage(disk: DiskFile, signal?: AbortSignal): Promise<DiskImage> {
  const h = await disk.read(0, 112, 'header');
  if (h.readUInt32BE(0) !== QCOW2_MAGIC) throw disk.corrupt('no qcow2 magic at byte 0');
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw disk.unsupported(`version ${version} is not supported (only 2 and 3)`);
  const backingOffset = Number(h.readBigUInt64BE(8));
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw disk.corrupt(`cluster_bits ${clusterBits} in the header (byte 20) is outside 9-21`);
  const clusterSize = 2 ** clusterBits;
  const virtualSize = Number(h.readBigUInt64BE(24));
  if (h.readUInt32BE(32) !== 0) throw disk.unsupported('encrypted images are not supported');
  const l1Size = h.readUInt32BE(36);
  const l1Offset = Number(h.readBigUInt64BE(40));
  if (backingOffset !== 0) {
    const length = Math.min(h.readUInt32BE(16), 1023);
    const name = length > 0 && backingOffset + length <= disk.size ? (await disk.read(backingOffset, length, 'backing file name')).toString('utf8') : '?';
    throw disk.unsupported(`it has a backing file (${name}); flatten the chain first (qemu-img convert -O qcow2 ${disk.path} flat.qcow2)`);
  }
  let compressionType = 0;
  if (version === 3) {
    const incompatible = h.readBigUInt64BE(72);
    const headerLength = h.readUInt32BE(100);
    if (headerLength > 104) compressionType = h[104]!;
    if (incompatible & 2n) throw disk.corrupt('the image marks itself corrupt (incompatible feature bit 1); repair it with qemu-img check -r all');
    if (incompatible & 4n) throw disk.unsupported('images with an external data file are not supported');
    if (incompatible & 16n) throw disk.unsupported('extended L2 entries (subclusters) are not supported');
    if (incompatible & ~0x1fn) throw disk.unsupported(`unknown incompatible features 0x${incompatible.toString(16)}`);
    if (compressionType !== 0) throw disk.unsupported(`compression type ${compressionType} (zstd) is not supported; only zlib`);
  }

  const l2Entries = clusterSize / 8;
  const neededL1 = Math.ceil(virtualSize / (clusterSize * l2Entries));
  if (l1Size < neededL1) throw disk.corrupt(`the L1 table has ${l1Size} entries (header byte 36), a ${virtualSize}-byte disk needs ${neededL1}`);
  if (l1Size > 0 && l1Offset % clusterSize !== 0) throw disk.corrupt(`the L1 table offset ${l1Offset} (header byte 40) is not cluster-aligned`);
  const size = Math.ceil(virtualSize / 512) * 512;
  const csizeShift = 62 - (clusterBits - 8);
  const csizeMask = (1n << BigInt(clusterBits - 8)) - 1n;
  const coffsetMask = (1n << BigInt(csizeShift)) - 1n;

  const runs = async function* (): AsyncGenerator<MappedRun> {
    const l1 = neededL1 > 0 ? await disk.read(l1Offset, neededL1 * 8, 'L1 table') : Buffer.alloc(0);
    for (let i = 0; i < neededL1; i++) {
      const entry = l1.readBigUInt64BE(i * 8);
      if (entry & L1_RESERVED) throw disk.corrupt(`L1 entry ${i} (byte ${l1Offset + i * 8}) has reserved bits set`);
      const l2Offset = Number(entry & OFFSET_MASK);
      if (l2Offset === 0) continue;
      if (l2Offset % clusterSize !== 0) throw disk.corrupt(`L1 entry ${i} (byte ${l1Offset + i * 8}) points at ${l2Offset}, not a cluster boundary`);
      const l2 = await disk.read(l2Offset, clusterSize, `L2 table ${i}`);
      for (let j = 0; j < l2Entries; j++) {
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
  return {size, extents: () => readMapped(disk, runs(), signal)};
}
