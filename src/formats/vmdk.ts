// streamOptimized VMDK (VMware's Virtual Disk Format 5.0, "Stream-Optimized Compressed
// Sparse Extents"): what vSphere's OVF import and AWS VM Import take. The file is written
// strictly front to back, as the format intends:
//   sparse extent header (grain directory "at end") | embedded descriptor | padding to 64 KiB
//   | each non-zero 64 KiB grain: marker (LBA, size) + its zlib-deflated bytes, sector-padded
//   | after each 512 grains' worth: grain table marker + grain table (empty ones too)
//   | grain directory marker + grain directory | footer marker + footer (header with the
//     directory's place) | end-of-stream marker
// Grains deflate on libuv's thread pool, several at once, and are written in disk order.
import {promisify} from 'node:util';
import {deflate} from 'node:zlib';
import {TskitError} from '../errors.ts';
import {expectBlock, nonZeroBlocks, scanBlocks, zeros} from './blocks.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';
import {derivedUuid} from './identity.ts';
import {orderedParallel} from './ordered-parallel.ts';

const deflateAsync = promisify(deflate) as (data: Buffer, options: object) => Promise<Buffer>;

export const VMDK_MAGIC = 0x564d444b; // "KDMV" read as a little-endian u32
export const VMDK_GRAIN_SECTORS = 128;
const GRAIN = VMDK_GRAIN_SECTORS * 512;
export const VMDK_GTES_PER_GT = 512;
const GT_SECTORS = (VMDK_GTES_PER_GT * 4) / 512;
const DESCRIPTOR_OFFSET = 1;
const DESCRIPTOR_SECTORS = 20;
/** Sectors before the first grain: header and descriptor, padded to a whole grain as VMware's tools do. */
const OVERHEAD = 128;
export const VMDK_FLAGS = {newlineTest: 1 << 0, redundantGrainTable: 1 << 1, zeroedGrain: 1 << 2, compressed: 1 << 16, markers: 1 << 17} as const;
export const VMDK_MARKER = {endOfStream: 0, grainTable: 1, grainDirectory: 2, footer: 3} as const;
export const VMDK_GD_AT_END = 0xffff_ffff_ffff_ffffn;
const IN_FLIGHT = 16;

export interface VmdkHeaderFields {
  capacitySectors: number;
  gdOffset: bigint;
}

export function vmdkHeader(fields: VmdkHeaderFields): Buffer {
  const h = Buffer.alloc(512);
  h.writeUInt32LE(VMDK_MAGIC, 0);
  h.writeUInt32LE(3, 4);
  h.writeUInt32LE(VMDK_FLAGS.newlineTest | VMDK_FLAGS.compressed | VMDK_FLAGS.markers, 8);
  h.writeBigUInt64LE(BigInt(fields.capacitySectors), 12);
  h.writeBigUInt64LE(BigInt(VMDK_GRAIN_SECTORS), 20);
  h.writeBigUInt64LE(BigInt(DESCRIPTOR_OFFSET), 28);
  h.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
  h.writeUInt32LE(VMDK_GTES_PER_GT, 44);
  h.writeBigUInt64LE(0n, 48); // no redundant grain directory in a stream
  h.writeBigUInt64LE(fields.gdOffset, 56);
  h.writeBigUInt64LE(BigInt(OVERHEAD), 64);
  h[72] = 0; // clean shutdown
  h.write('\n \r\n', 73, 'latin1'); // the newline-corruption detector
  h.writeUInt16LE(1, 77); // deflate
  return h;
}

/** The embedded descriptor, with the disk database entries vSphere and AWS import read. */
export function vmdkDescriptor(name: string, capacitySectors: number, contentId: Buffer): string {
  let cid = contentId.readUInt32BE(0);
  if (cid >= 0xffff_fffe) cid = 0x7fff_ffff; // ffffffff/fffffffe mean "no parent" or "empty" to some readers
  const cylinders = Math.min(65535, Math.ceil(capacitySectors / (255 * 63)));
  const safeName = name.replace(/["\n\r]/g, '_');
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${cid.toString(16).padStart(8, '0')}`,
    'parentCID=ffffffff',
    'createType="streamOptimized"',
    '',
    '# Extent description',
    `RW ${capacitySectors} SPARSE "${safeName}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.adapterType = "lsilogic"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    'ddb.geometry.heads = "255"',
    'ddb.geometry.sectors = "63"',
    `ddb.longContentID = "${contentId.toString('hex').slice(0, 32)}"`,
    'ddb.toolsVersion = "2147483647"',
    'ddb.virtualHWVersion = "4"',
    '',
  ].join('\n');
}

function metadataMarker(type: number, sectors: number): Buffer {
  const marker = Buffer.alloc(512);
  marker.writeBigUInt64LE(BigInt(sectors), 0);
  marker.writeUInt32LE(0, 8);
  marker.writeUInt32LE(type, 12);
  return marker;
}

export async function* encodeVmdk(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  const capacitySectors = image.size / 512;
  const map = await scanBlocks(image, GRAIN, {signal: context.signal, progress: (offset) => context.progress(offset, 'scan')});
  const gts = Math.ceil(map.blocks / VMDK_GTES_PER_GT);
  const gdSectors = Math.ceil((gts * 4) / 512);
  const gd = Buffer.alloc(gdSectors * 512);

  yield vmdkHeader({capacitySectors, gdOffset: VMDK_GD_AT_END});
  const descriptor = Buffer.from(vmdkDescriptor(context.name, capacitySectors, derivedUuid(map.fingerprint, 'vmdk', context.epoch)), 'utf8');
  if (descriptor.length > DESCRIPTOR_SECTORS * 512) throw new Error('VMDK descriptor too long');
  yield descriptor;
  yield OVERHEAD * 512 - 512 - descriptor.length;
  let sector = OVERHEAD;

  // every grain table is written, an empty one too, as VMware's own stream writer does: each
  // right after the last grain it could point at
  let gt = Buffer.alloc(GT_SECTORS * 512);
  let gtIndex = 0;
  let gtUsed = false;
  const flushGrainTable = function* (): Generator<Piece> {
    yield metadataMarker(VMDK_MARKER.grainTable, GT_SECTORS);
    gd.writeUInt32LE(sector + 1, gtIndex * 4);
    yield gtUsed ? gt : zeros(GT_SECTORS * 512);
    sector += 1 + GT_SECTORS;
    gtIndex++;
    if (gtUsed) gt = Buffer.alloc(GT_SECTORS * 512);
    gtUsed = false;
  };

  const level = context.level;
  const grains = nonZeroBlocks(image, GRAIN, {signal: context.signal, progress: context.progress});
  // deflate reads its input on another thread, and a block may be a view into the source's
  // memory: each grain is copied into one of a few buffers, reused once its deflate is done
  const copies: Buffer[] = [];
  const compressed = orderedParallel(
    grains,
    async (block) => {
      const copy = copies.pop() ?? Buffer.allocUnsafeSlow(GRAIN);
      block.data.copy(copy);
      const deflated = await deflateAsync(copy, {level, chunkSize: GRAIN + 1024}); // room for the whole output: one round trip
      copies.push(copy);
      return deflated;
    },
    IN_FLIGHT,
  );
  let ordinal = 0;
  for await (const {item: block, result: deflated} of compressed) {
    expectBlock(map, ordinal++, block.index);
    while (gtIndex < Math.floor(block.index / VMDK_GTES_PER_GT)) yield* flushGrainTable();
    if (sector > 0xffff_ffff) throw new TskitError(`a VMDK addresses at most 2 TiB of compressed grains; this disk needs more (at grain ${block.index})`);
    gt.writeUInt32LE(sector, (block.index % VMDK_GTES_PER_GT) * 4);
    gtUsed = true;
    const marker = Buffer.alloc(12);
    marker.writeBigUInt64LE(BigInt(block.index * VMDK_GRAIN_SECTORS), 0);
    marker.writeUInt32LE(deflated.length, 8);
    yield marker;
    yield deflated;
    const bytes = 12 + deflated.length;
    const padded = Math.ceil(bytes / 512) * 512;
    if (padded > bytes) yield padded - bytes;
    sector += padded / 512;
  }
  expectBlock(map, ordinal);
  while (gtIndex < gts) yield* flushGrainTable();

  yield metadataMarker(VMDK_MARKER.grainDirectory, gdSectors);
  const gdOffset = sector + 1;
  yield gd;
  sector += 1 + gdSectors;
  yield metadataMarker(VMDK_MARKER.footer, 1);
  yield vmdkHeader({capacitySectors, gdOffset: BigInt(gdOffset)});
  yield metadataMarker(VMDK_MARKER.endOfStream, 0);
}
