// VHDX (Microsoft's [MS-VHDX] specification), dynamic, for Hyper-V Gen2. Pass one finds the
// non-zero 1 MiB payload blocks (Microsoft's advice for Linux guests is 1 MiB blocks), so the
// file is written front to back:
//   0      file identifier ("vhdxfile", creator)
//   64 KiB header 1, 128 KiB header 2 (CRC-32C, sequence numbers 1 and 2, empty log)
//   192 KiB region table, 256 KiB its copy (BAT and metadata regions)
//   1 MiB  log (1 MiB, empty: a zero log GUID means nothing to replay)
//   2 MiB  metadata region: table, then file parameters, virtual disk size, page 83 id,
//          logical and physical sector sizes
//   3 MiB  BAT, then the payload blocks present, in disk order
// GUIDs derive from the content fingerprint and SOURCE_DATE_EPOCH.
import {blockRuns, expectBlock, nonZeroBlocks, scanBlocks} from './blocks.ts';
import {crc32c} from './crc32c.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';
import {derivedUuid, msGuid, msGuidFromString} from './identity.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
export const VHDX_BLOCK_SIZE = MiB;
export const VHDX_LOGICAL_SECTOR = 512;
export const VHDX_PHYSICAL_SECTOR = 4096;
const LOG_OFFSET = MiB;
const LOG_LENGTH = MiB;
const METADATA_OFFSET = 2 * MiB;
const METADATA_LENGTH = MiB;
const BAT_OFFSET = 3 * MiB;

export const VHDX_GUIDS = {
  bat: msGuidFromString('2dc27766-f623-4200-9d64-115e9bfd4a08'),
  metadata: msGuidFromString('8b7ca206-4790-4b9a-b8fe-575f050f886e'),
  fileParameters: msGuidFromString('caa16737-fa36-4d43-b3b6-33f0aa44e76b'),
  virtualDiskSize: msGuidFromString('2fa54224-cd1b-4876-b211-5dbed83bf4b8'),
  page83: msGuidFromString('beca12ab-b2e6-4523-93ef-c309e000c746'),
  logicalSectorSize: msGuidFromString('8141bf1d-a96f-4709-ba47-f233a8faab5f'),
  physicalSectorSize: msGuidFromString('cda348c7-445d-4471-9cc9-e9885251c556'),
  parentLocator: msGuidFromString('a8d35f2d-b30b-454d-abf7-d3d84834ab0c'),
} as const;

export const VHDX_BLOCK_STATE = {notPresent: 0, undefined: 1, zero: 2, unmapped: 3, unmappedV1: 5, fullyPresent: 6, partiallyPresent: 7} as const;

/** Payload blocks per sector bitmap block: 2^23 sectors' worth of payload. */
export function chunkRatio(blockSize: number, logicalSector: number): number {
  return (2 ** 23 * logicalSector) / blockSize;
}

/** The BAT index of payload block `block` (a sector bitmap entry follows every chunkRatio payload entries). */
export function batIndex(block: number, ratio: number): number {
  return block + Math.floor(block / ratio);
}

export async function* encodeVhdx(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  const map = await scanBlocks(image, VHDX_BLOCK_SIZE, {signal: context.signal, progress: (offset) => context.progress(offset, 'scan')});
  const ratio = chunkRatio(VHDX_BLOCK_SIZE, VHDX_LOGICAL_SECTOR);
  const payloadBlocks = map.blocks;
  const batEntries = payloadBlocks + Math.floor((payloadBlocks - 1) / ratio);
  const batLength = Math.ceil((batEntries * 8) / MiB) * MiB;
  const dataOffset = BAT_OFFSET + batLength;
  const id = (label: string) => msGuid(derivedUuid(map.fingerprint, `vhdx-${label}`, context.epoch));

  const identifier = Buffer.alloc(64 * KiB);
  identifier.write('vhdxfile', 0, 'latin1');
  identifier.write('tskit', 8, 'utf16le');
  yield identifier;
  yield header(1, id('file-write'), id('data-write'));
  yield header(2, id('file-write'), id('data-write'));
  const regions = regionTable(batLength);
  yield regions;
  yield regions;
  yield LOG_OFFSET - 5 * 64 * KiB;
  yield LOG_LENGTH; // the empty log
  yield metadataRegion(image.size, id('page83'));

  const bat = Buffer.alloc(batLength);
  map.allocated.forEach((block, ordinal) => {
    const fileOffsetMiB = (dataOffset + ordinal * VHDX_BLOCK_SIZE) / MiB;
    bat.writeBigUInt64LE((BigInt(fileOffsetMiB) << 20n) | BigInt(VHDX_BLOCK_STATE.fullyPresent), batIndex(block, ratio) * 8);
  });
  yield bat;

  let ordinal = 0;
  for await (const run of blockRuns(nonZeroBlocks(image, VHDX_BLOCK_SIZE, {signal: context.signal, progress: context.progress}), 8 * MiB)) {
    for (let i = 0; i < run.data.length / VHDX_BLOCK_SIZE; i++) expectBlock(map, ordinal++, run.index + i);
    yield run.data;
  }
  expectBlock(map, ordinal);
}

function header(sequence: number, fileWrite: Buffer, dataWrite: Buffer): Buffer {
  const block = Buffer.alloc(64 * KiB);
  block.write('head', 0, 'latin1');
  block.writeBigUInt64LE(BigInt(sequence), 8);
  fileWrite.copy(block, 16);
  dataWrite.copy(block, 32);
  // log GUID (48) zero: no log to replay; log version (64) 0
  block.writeUInt16LE(1, 66);
  block.writeUInt32LE(LOG_LENGTH, 68);
  block.writeBigUInt64LE(BigInt(LOG_OFFSET), 72);
  block.writeUInt32LE(crc32c(block.subarray(0, 4 * KiB)), 4);
  return block;
}

function regionTable(batLength: number): Buffer {
  const table = Buffer.alloc(64 * KiB);
  table.write('regi', 0, 'latin1');
  table.writeUInt32LE(2, 8);
  const entry = (at: number, guid: Buffer, offset: number, length: number) => {
    guid.copy(table, at);
    table.writeBigUInt64LE(BigInt(offset), at + 16);
    table.writeUInt32LE(length, at + 24);
    table.writeUInt32LE(1, at + 28); // required
  };
  entry(16, VHDX_GUIDS.bat, BAT_OFFSET, batLength);
  entry(48, VHDX_GUIDS.metadata, METADATA_OFFSET, METADATA_LENGTH);
  table.writeUInt32LE(crc32c(table), 4);
  return table;
}

function metadataRegion(size: number, page83: Buffer): Buffer {
  const region = Buffer.alloc(METADATA_LENGTH);
  region.write('metadata', 0, 'latin1');
  const IS_VIRTUAL_DISK = 2;
  const IS_REQUIRED = 4;
  const items: Array<[Buffer, Buffer, number]> = [];
  const u32 = (value: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return b;
  };
  const parameters = Buffer.alloc(8);
  parameters.writeUInt32LE(VHDX_BLOCK_SIZE, 0); // flags 0: dynamic, no parent
  items.push([VHDX_GUIDS.fileParameters, parameters, IS_REQUIRED]);
  const virtualSize = Buffer.alloc(8);
  virtualSize.writeBigUInt64LE(BigInt(size));
  items.push([VHDX_GUIDS.virtualDiskSize, virtualSize, IS_VIRTUAL_DISK | IS_REQUIRED]);
  items.push([VHDX_GUIDS.page83, page83, IS_VIRTUAL_DISK | IS_REQUIRED]);
  items.push([VHDX_GUIDS.logicalSectorSize, u32(VHDX_LOGICAL_SECTOR), IS_VIRTUAL_DISK | IS_REQUIRED]);
  items.push([VHDX_GUIDS.physicalSectorSize, u32(VHDX_PHYSICAL_SECTOR), IS_VIRTUAL_DISK | IS_REQUIRED]);
  region.writeUInt16LE(items.length, 10);
  let data = 64 * KiB;
  items.forEach(([guid, value, flags], i) => {
    const at = 32 + i * 32;
    guid.copy(region, at);
    region.writeUInt32LE(data, at + 16);
    region.writeUInt32LE(value.length, at + 20);
    region.writeUInt32LE(flags, at + 24);
    value.copy(region, data);
    data += value.length;
  });
  return region;
}
