// The master boot record: 440 bytes of boot code, the disk signature, four partition
// entries and 0x55AA. Used alone (BIOS disks), as GPT's protective MBR, and by isohybrid.
import {SECTOR} from './disk.ts';

export interface MbrPartition {
  bootable?: boolean;
  type: number;
  /** First sector and sector count. */
  start: number;
  sectors: number;
}

/** Cylinder/head/sector of an LBA under the usual 255-head, 63-sector translation, capped at 1023/254/63. */
export function chs(lba: number, heads = 255, sectorsPerTrack = 63): [number, number, number] {
  const cylinder = Math.floor(lba / (heads * sectorsPerTrack));
  if (cylinder > 1023) return [0xfe, 0xff, 0xff];
  const head = Math.floor(lba / sectorsPerTrack) % heads;
  const sector = (lba % sectorsPerTrack) + 1;
  return [head, sector | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

export function partitionEntry(out: Buffer, index: number, p: MbrPartition): void {
  const at = 446 + index * 16;
  out[at] = p.bootable ? 0x80 : 0;
  out.set(chs(p.start), at + 1);
  out[at + 4] = p.type;
  out.set(chs(p.start + p.sectors - 1), at + 5);
  out.writeUInt32LE(p.start, at + 8);
  out.writeUInt32LE(Math.min(p.sectors, 0xffffffff), at + 12);
}

/** A 512-byte MBR: `code` (up to 440 bytes) at the start, then signature, partitions, 0x55AA. */
export function mbr(options: {code?: Buffer; signature: number; partitions: MbrPartition[]}): Buffer {
  const out = Buffer.alloc(SECTOR);
  if (options.code) {
    if (options.code.length > 440) throw new Error(`MBR boot code is ${options.code.length} bytes; at most 440 fit`);
    options.code.copy(out, 0);
  }
  out.writeUInt32LE(options.signature >>> 0, 440);
  options.partitions.forEach((p, i) => partitionEntry(out, i, p));
  out[510] = 0x55;
  out[511] = 0xaa;
  return out;
}
