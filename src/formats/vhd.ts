// VHD (Microsoft's Virtual Hard Disk Image Format Specification, 2006).
// fixed: the raw disk followed by a 512-byte footer: what Azure takes as a page blob
//   (virtual size a whole number of MiB, file = size + 512).
// dynamic: footer copy, dynamic header, block allocation table, then only the non-zero 2 MiB
//   blocks, each behind its sector bitmap, and the footer again at the end (Hyper-V).
import {TskitError} from '../errors.ts';
import {Fingerprint, expectBlock, nonZeroBlocks, scanBlocks} from './blocks.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';
import {derivedUuid} from './identity.ts';
import {encodeRaw} from './raw.ts';

export const VHD_FOOTER_SIZE = 512;
export const VHD_DYNAMIC_HEADER_SIZE = 1024;
export const VHD_BLOCK_SIZE = 2 * 1024 * 1024;
/** Seconds from 1970-01-01 to 2000-01-01, VHD's epoch. */
const VHD_EPOCH = 946_684_800;
const NO_OFFSET = 0xffff_ffff_ffff_ffffn;

export const VHD_DISK_TYPE = {fixed: 2, dynamic: 3, differencing: 4} as const;

export interface VhdFooterFields {
  size: number;
  diskType: number;
  /** Where the dynamic header is (dynamic disks); none for fixed ones. */
  dataOffset?: number;
  uniqueId: Buffer;
  /** Seconds since 1970. */
  epoch: number;
}

/**
 * The footer. The creator application is Hyper-V's tag ("win "): qemu, VirtualBox and Azure
 * take the disk size from "current size" for it, while for an unknown creator qemu derives
 * the size from the CHS geometry, which rounds most sizes down.
 */
export function vhdFooter(fields: VhdFooterFields): Buffer {
  const footer = Buffer.alloc(VHD_FOOTER_SIZE);
  footer.write('conectix', 0, 'latin1');
  footer.writeUInt32BE(2, 8); // features: the reserved bit that must be set
  footer.writeUInt32BE(0x0001_0000, 12);
  footer.writeBigUInt64BE(fields.dataOffset === undefined ? NO_OFFSET : BigInt(fields.dataOffset), 16);
  footer.writeUInt32BE(Math.min(Math.max(fields.epoch - VHD_EPOCH, 0), 0xffff_ffff), 24);
  footer.write('win ', 28, 'latin1');
  footer.writeUInt32BE(0x000a_0000, 32);
  footer.write('Wi2k', 36, 'latin1');
  footer.writeBigUInt64BE(BigInt(fields.size), 40);
  footer.writeBigUInt64BE(BigInt(fields.size), 48);
  const {cylinders, heads, sectorsPerTrack} = chsGeometry(fields.size);
  footer.writeUInt16BE(cylinders, 56);
  footer.writeUInt8(heads, 58);
  footer.writeUInt8(sectorsPerTrack, 59);
  footer.writeUInt32BE(fields.diskType, 60);
  fields.uniqueId.copy(footer, 68, 0, 16);
  footer.writeUInt32BE(onesComplementSum(footer), 64);
  return footer;
}

/** The checksum VHD footers and headers carry: the one's complement of the sum of their bytes (checksum field zero). */
export function onesComplementSum(bytes: Buffer, checksumAt = 64): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += bytes[i]!;
  return ~sum >>> 0;
}

/** CHS geometry by the algorithm in the VHD specification's appendix. */
export function chsGeometry(size: number): {cylinders: number; heads: number; sectorsPerTrack: number} {
  let totalSectors = Math.floor(size / 512);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.floor((cylinderTimesHeads + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return {cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack};
}

export async function* encodeFixedVhd(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  const fingerprint = new Fingerprint(image.size);
  yield* encodeRaw(image, context, (block) => fingerprint.add(block));
  yield vhdFooter({size: image.size, diskType: VHD_DISK_TYPE.fixed, uniqueId: derivedUuid(fingerprint.digest(), 'vhd', context.epoch), epoch: context.epoch});
}

export async function* encodeDynamicVhd(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  const map = await scanBlocks(image, VHD_BLOCK_SIZE, {signal: context.signal, progress: (offset) => context.progress(offset, 'scan')});
  const entries = map.blocks;
  const batBytes = roundUp(entries * 4, 512);
  const batOffset = VHD_FOOTER_SIZE + VHD_DYNAMIC_HEADER_SIZE;
  const firstBlock = batOffset + batBytes;
  const bitmapBytes = 512; // one bit per sector of a 2 MiB block
  const stride = bitmapBytes + VHD_BLOCK_SIZE;
  const fileEnd = firstBlock + map.allocated.length * stride;
  if (fileEnd / 512 > 0xffff_ffff) throw new TskitError(`a dynamic VHD holds at most 2 TiB of blocks; this disk needs ${fileEnd} bytes (use vhdx)`);

  const footer = vhdFooter({
    size: image.size,
    diskType: VHD_DISK_TYPE.dynamic,
    dataOffset: VHD_FOOTER_SIZE,
    uniqueId: derivedUuid(map.fingerprint, 'dynamic-vhd', context.epoch),
    epoch: context.epoch,
  });
  yield footer;
  yield dynamicHeader(batOffset, entries);

  const bat = Buffer.alloc(batBytes, 0xff);
  map.allocated.forEach((index, ordinal) => bat.writeUInt32BE((firstBlock + ordinal * stride) / 512, index * 4));
  yield bat;

  const bitmap = Buffer.alloc(bitmapBytes, 0xff);
  let ordinal = 0;
  for await (const block of nonZeroBlocks(image, VHD_BLOCK_SIZE, {signal: context.signal, progress: context.progress})) {
    expectBlock(map, ordinal++, block.index);
    yield bitmap;
    yield block.data;
  }
  expectBlock(map, ordinal);
  yield footer;
}

function dynamicHeader(batOffset: number, entries: number): Buffer {
  const header = Buffer.alloc(VHD_DYNAMIC_HEADER_SIZE);
  header.write('cxsparse', 0, 'latin1');
  header.writeBigUInt64BE(NO_OFFSET, 8);
  header.writeBigUInt64BE(BigInt(batOffset), 16);
  header.writeUInt32BE(0x0001_0000, 24);
  header.writeUInt32BE(entries, 28);
  header.writeUInt32BE(VHD_BLOCK_SIZE, 32);
  header.writeUInt32BE(onesComplementSum(header, 36), 36);
  return header;
}

const roundUp = (n: number, multiple: number) => Math.ceil(n / multiple) * multiple;
