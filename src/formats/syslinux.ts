// Installing SYSLINUX and ISOLINUX without their installers: the fields their own tools
// patch, set from where tskit's layout put the files.
//
// SYSLINUX on FAT (what `syslinux --install` does): the volume's boot sector takes
// ldlinux.bss's jump, OEM name and code around the BPB the filesystem writer made; the
// boot sector learns the first sector of ldlinux.sys; ldlinux.sys's patch area (found by
// its magic 0x3EB202FE) gets its sector count, the sector extents of the rest of itself,
// the two ADV sectors that follow it, and a checksum that makes its dwords sum to the
// magic. Sector numbers are relative to the filesystem (the boot code adds the BPB's
// hidden sectors).
//
// ISOLINUX (mkisofs -boot-info-table): bytes 8-63 of the boot file carry the primary
// volume descriptor's LBA, the file's LBA, its length and a checksum of its bytes from 64.
// isohybrid: an MBR whose code (isohdpfx.bin) loads isolinux.bin from the LBA at byte 432.
import {TskitError} from '../errors.ts';
import {SECTOR} from './disk.ts';

const LDLINUX_MAGIC = 0x3eb202fe;
const ADV_SECTORS = 2;
const ADV_MAGIC1 = 0x5a2d2fa5;
const ADV_MAGIC2 = 0xa3041767;
const ADV_MAGIC3 = 0xdd28bf64;
/** The most sectors one extent may cover: its byte count must stay below 64 KiB. */
const EXTENT_MAX_SECTORS = 127;

/** ldlinux.sys as the FAT file holds it: the core, padded to whole sectors, then two empty ADV sectors. */
export function ldlinuxFile(core: Buffer): Buffer {
  const padded = Buffer.alloc(Math.ceil(core.length / SECTOR) * SECTOR);
  core.copy(padded);
  return Buffer.concat([padded, emptyAdv(), emptyAdv()]);
}

/** An empty Auxiliary Data Vector sector (syslinux's `reset_adv`). */
function emptyAdv(): Buffer {
  const adv = Buffer.alloc(SECTOR);
  adv.writeUInt32LE(ADV_MAGIC1, 0);
  adv.writeUInt32LE(ADV_MAGIC3, SECTOR - 4);
  // the checksum makes the data's dwords plus it sum to ADV_MAGIC2
  let sum = 0;
  for (let i = 8; i < SECTOR - 4; i += 4) sum = (sum + adv.readUInt32LE(i)) >>> 0;
  adv.writeUInt32LE((ADV_MAGIC2 - sum) >>> 0, 4);
  return adv;
}

/**
 * Patches `file` (ldlinuxFile's output, a copy is returned) for a volume where it starts at
 * filesystem sector `firstSector` and is contiguous, and writes ldlinux.bss's code and the
 * pointer to it into `bootSector` (the volume's, BPB already written).
 */
export function installSyslinux(options: {bss: Buffer; coreLength: number; file: Buffer; firstSector: number; bootSector: Buffer}): Buffer {
  const {bss, bootSector} = options;
  if (bss.length !== SECTOR || bss[510] !== 0x55 || bss[511] !== 0xaa) throw new TskitError('bootloader image: ldlinux.bss is not a 512-byte boot sector');
  const file = Buffer.from(options.file);
  const coreLength = options.coreLength;
  const magicAt = findMagic(file, coreLength);
  const epa = file.readUInt16LE(magicAt + 22);
  const field = (n: number) => file.readUInt16LE(epa + 2 * n);
  const [advptr, , , , , secptr, secptrcnt, sect1ptr0, sect1ptr1] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map(field) as number[];
  const dataSectors = Math.ceil(coreLength / SECTOR);
  const totalSectors = dataSectors + ADV_SECTORS;
  if (file.length < totalSectors * SECTOR) throw new Error('ldlinux.sys file is shorter than its core and ADV');

  // The boot sector: syslinux's jump and OEM name, its code after the FAT32 extended BPB.
  bss.copy(bootSector, 0, 0, 11);
  bss.copy(bootSector, 0x5a, 0x5a, 0x1fe);
  const first = options.firstSector;
  bootSector.writeUInt32LE(first >>> 0, sect1ptr0!);
  bootSector.writeUInt32LE(Math.floor(first / 2 ** 32), sect1ptr1!);

  // The patch area: sizes, then the extents of sectors 1 .. dataSectors-1.
  file.writeUInt16LE(dataSectors, magicAt + 8);
  file.writeUInt16LE(ADV_SECTORS, magicAt + 10);
  file.writeUInt32LE(Math.floor(coreLength / 4), magicAt + 12);
  file.fill(0, secptr!, secptr! + secptrcnt! * 10);
  let slot = 0;
  for (let sector = 1; sector < dataSectors; sector += EXTENT_MAX_SECTORS) {
    if (slot >= secptrcnt!) throw new TskitError(`ldlinux.sys needs more than its ${secptrcnt} sector extents`);
    const length = Math.min(EXTENT_MAX_SECTORS, dataSectors - sector);
    file.writeBigUInt64LE(BigInt(first + sector), secptr! + slot * 10);
    file.writeUInt16LE(length, secptr! + slot * 10 + 8);
    slot++;
  }
  file.writeBigUInt64LE(BigInt(first + dataSectors), advptr!);
  file.writeBigUInt64LE(BigInt(first + dataSectors + 1), advptr! + 8);

  // The checksum: the core's complete dwords, this field included, sum to the magic.
  file.writeUInt32LE(0, magicAt + 16);
  let sum = 0;
  for (let i = 0; i + 4 <= coreLength; i += 4) sum = (sum + file.readUInt32LE(i)) >>> 0;
  file.writeUInt32LE((LDLINUX_MAGIC - sum) >>> 0, magicAt + 16);
  return file;
}

function findMagic(file: Buffer, limit: number): number {
  for (let i = 0; i + 4 <= Math.min(limit, 64 * 1024); i += 4) if (file.readUInt32LE(i) === LDLINUX_MAGIC) return i;
  throw new TskitError('bootloader image: ldlinux.sys has no patch area (magic 0x3EB202FE): not a SYSLINUX 4+ core');
}

/** isolinux.bin with its boot info table filled in (a copy). */
export function isolinuxBootInfo(isolinux: Buffer, pvdLba: number, fileLba: number): Buffer {
  const out = Buffer.from(isolinux);
  if (out.length < 64) throw new TskitError('bootloader image: isolinux.bin is too short');
  out.fill(0, 8, 64);
  out.writeUInt32LE(pvdLba, 8);
  out.writeUInt32LE(fileLba, 12);
  out.writeUInt32LE(out.length, 16);
  let sum = 0;
  for (let i = 64; i < out.length; i += 4) {
    const word = i + 4 <= out.length ? out.readUInt32LE(i) : Buffer.concat([out.subarray(i), Buffer.alloc(4)]).readUInt32LE(0);
    sum = (sum + word) >>> 0;
  }
  out.writeUInt32LE(sum, 20);
  return out;
}

/** The isohybrid signature isolinux.bin carries at byte 64 when it can boot from a disk. */
export function isHybridIsolinux(isolinux: Buffer): boolean {
  return isolinux.length >= 68 && isolinux.readUInt32LE(64) === 0x7078c0fb;
}

/**
 * The MBR that makes an ISO bootable as a disk (isohybrid's defaults: 64 heads, 32 sectors,
 * one active partition of type 0x17 from sector 0 over the whole image).
 */
export function isohybridMbr(options: {code: Buffer; bootFileLba: number; imageBytes: number; signature: number}): Buffer {
  const {code} = options;
  if (code.length < 432 || code.length > 440) throw new TskitError(`bootloader image: isohdpfx.bin is ${code.length} bytes, expected 432`);
  const heads = 64;
  const sectorsPerTrack = 32;
  const out = Buffer.alloc(SECTOR);
  code.copy(out, 0, 0, 432);
  out.writeUInt32LE(options.bootFileLba * 4, 432);
  out.writeUInt32LE(0, 436);
  out.writeUInt32LE(options.signature >>> 0, 440);
  const sectors = options.imageBytes / SECTOR;
  const cylinders = Math.floor(sectors / (heads * sectorsPerTrack));
  const at = 446;
  out[at] = 0x80;
  out.set([0, 1, 0], at + 1);
  out[at + 4] = 0x17;
  const c = Math.min(cylinders, 1024) - 1;
  out[at + 5] = heads - 1;
  out[at + 6] = sectorsPerTrack | ((c & 0x300) >> 2);
  out[at + 7] = c & 0xff;
  out.writeUInt32LE(0, at + 8);
  out.writeUInt32LE(cylinders * heads * sectorsPerTrack, at + 12);
  out[510] = 0x55;
  out[511] = 0xaa;
  return out;
}
