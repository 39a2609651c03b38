// The GUID partition table (UEFI specification, chapter 5): a protective MBR, the primary
// header at LBA 1 with 128 entries of 128 bytes from LBA 2, and the backup entries and
// header at the end of the disk. GUIDs come from the caller (derived from content, never
// random) so the same inputs give the same disk.
import {createHash} from 'node:crypto';
import {crc32} from 'node:zlib';
import {SECTOR} from './disk.ts';
import {bufferContent, type Region} from './content.ts';
import {mbr} from './mbr.ts';

export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const LINUX_DATA_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
export const BIOS_BOOT_TYPE = '21686148-6449-6E6F-744E-656564454649';

const ENTRIES = 128;
const ENTRY_SIZE = 128;
/** Sectors the entry array takes (128 × 128 bytes). */
export const GPT_ENTRY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR;
/** The first LBA a partition may use (header and entries before it). */
export const GPT_FIRST_USABLE = 2 + GPT_ENTRY_SECTORS;

export interface GptPartition {
  type: string;
  guid: string;
  name: string;
  start: number;
  /** Last LBA, inclusive. */
  end: number;
  /** Attribute bits (bit 2: legacy BIOS bootable, for syslinux's gptmbr). */
  attributes?: bigint;
}

/** A GUID in the mixed-endian form GPT stores (first three fields little-endian). */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${guid}`);
  const raw = Buffer.from(hex, 'hex');
  return Buffer.concat([Buffer.from(raw.subarray(0, 4)).reverse(), Buffer.from(raw.subarray(4, 6)).reverse(), Buffer.from(raw.subarray(6, 8)).reverse(), raw.subarray(8)]);
}

/** A version-5-style (name-based, SHA-256 here) GUID: the same seed always gives the same GUID. */
export function derivedGuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`.toUpperCase();
}

function entryArray(partitions: GptPartition[]): Buffer {
  const out = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  partitions.forEach((p, i) => {
    const at = i * ENTRY_SIZE;
    guidBytes(p.type).copy(out, at);
    guidBytes(p.guid).copy(out, at + 16);
    out.writeBigUInt64LE(BigInt(p.start), at + 32);
    out.writeBigUInt64LE(BigInt(p.end), at + 40);
    out.writeBigUInt64LE(p.attributes ?? 0n, at + 48);
    const name = Buffer.from(p.name.slice(0, 36), 'utf16le');
    name.copy(out, at + 56);
  });
  return out;
}

function header(options: {current: number; backup: number; firstUsable: number; lastUsable: number; diskGuid: string; entriesLba: number; entriesCrc: number}): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('EFI PART', 0, 'latin1');
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(92, 12);
  h.writeBigUInt64LE(BigInt(options.current), 24);
  h.writeBigUInt64LE(BigInt(options.backup), 32);
  h.writeBigUInt64LE(BigInt(options.firstUsable), 40);
  h.writeBigUInt64LE(BigInt(options.lastUsable), 48);
  guidBytes(options.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(options.entriesLba), 72);
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(options.entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

/** The last LBA a partition may use on a disk of `sectors` sectors. */
export function gptLastUsable(sectors: number): number {
  return sectors - 1 - GPT_ENTRY_SECTORS - 1;
}

/**
 * The regions of a GPT disk of `sectors` sectors: the MBR (protective, with `mbrCode` as
 * its boot code when BIOS should boot it too), both headers and both entry arrays.
 */
export function gptRegions(options: {sectors: number; diskGuid: string; partitions: GptPartition[]; mbrCode?: Buffer; mbrSignature: number}): Region[] {
  const {sectors} = options;
  const entries = entryArray(options.partitions);
  const entriesCrc = crc32(entries);
  const lastUsable = gptLastUsable(sectors);
  for (const p of options.partitions) {
    if (p.start < GPT_FIRST_USABLE || p.end > lastUsable || p.end < p.start) throw new Error(`GPT: partition ${p.name} (${p.start}-${p.end}) is outside ${GPT_FIRST_USABLE}-${lastUsable}`);
  }
  const protective = mbr({
    ...(options.mbrCode ? {code: options.mbrCode} : {}),
    signature: options.mbrSignature,
    partitions: [{type: 0xee, start: 1, sectors: Math.min(sectors - 1, 0xffffffff)}],
  });
  const primary = header({current: 1, backup: sectors - 1, firstUsable: GPT_FIRST_USABLE, lastUsable, diskGuid: options.diskGuid, entriesLba: 2, entriesCrc});
  const backup = header({current: sectors - 1, backup: 1, firstUsable: GPT_FIRST_USABLE, lastUsable, diskGuid: options.diskGuid, entriesLba: lastUsable + 1, entriesCrc});
  return [
    {offset: 0, content: bufferContent(Buffer.concat([protective, primary, entries]))},
    {offset: (lastUsable + 1) * SECTOR, content: bufferContent(Buffer.concat([entries, backup]))},
  ];
}
