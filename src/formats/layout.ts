// Bootable layouts: a kernel, an initrd and a command line (files staged by the build) plus
// boot loader binaries become a partitioned disk or an ISO, as a DiskImage whose kernel and
// initrd bytes stream from their files while the extents are produced.
//
//   efi     GPT, one EFI system partition (FAT32): systemd-boot as EFI/BOOT/BOOTX64.EFI with a
//           Boot Loader Specification entry for /kernel and /initrd.img
//   bios    MBR with SYSLINUX's boot code, one active FAT32 partition with SYSLINUX installed
//   hybrid  GPT whose protective MBR carries SYSLINUX's GPT boot code, and an ESP marked
//           legacy-BIOS-bootable holding both loaders over one copy of the kernel and initrd
//
// Every identifier (disk GUID, partition GUIDs, MBR signature, FAT volume id) derives from
// the content and the build's timestamp, so the same inputs give the same bytes.
import {createHash} from 'node:crypto';
import {TskitError} from '../errors.ts';
import {SECTOR, type DiskImage} from './disk.ts';
import {bufferContent, fileContent, regionExtents, shiftRegions, type Content, type Region} from './content.ts';
import {need, type BootloaderFiles} from './bootloader.ts';
import {ATTR_HIDDEN, ATTR_READ_ONLY, ATTR_SYSTEM, fatSizeFor, fatVolume, type FatFile, type FatType} from './fat.ts';
import {derivedGuid, ESP_TYPE, gptRegions, LINUX_DATA_TYPE, GPT_ENTRY_SECTORS, type GptPartition} from './gpt.ts';
import {mbr, type MbrPartition} from './mbr.ts';
import {ISO_BLOCK, isoLayout, type IsoFile} from './iso9660.ts';
import {installSyslinux, isHybridIsolinux, isohybridMbr, isolinuxBootInfo, ldlinuxFile} from './syslinux.ts';

export type BootMode = 'efi' | 'bios' | 'hybrid';
export const BOOT_MODES: BootMode[] = ['efi', 'bios', 'hybrid'];

export interface StagedFile {
  path: string;
  size: number;
  sha256: string;
}

/** What boots: the build's kernel and initrd (files on disk) and its command line. */
export interface BootPayload {
  kernel: StagedFile;
  initrd: StagedFile;
  cmdline: string;
}

export interface DiskLayoutOptions {
  boot: BootMode;
  /** Virtual disk size in bytes; default: the smallest that fits, rounded up to `multiple`. */
  size?: number;
  /** What the size must be a multiple of (the target format's rule; at least 512). */
  multiple?: number;
  /** Bytes for an empty Linux data partition after the boot partition (0: none). */
  dataSize?: number;
  /** Seconds since the epoch: FAT and ISO timestamps, and part of every derived identifier. */
  mtime: number;
}

export interface BootDisk extends DiskImage {
  /** Where the boot (and data) partitions start and how long they are, in bytes. */
  partitions: Array<{name: string; offset: number; size: number}>;
}

const MiB = 1024 * 1024;
const PARTITION_START = MiB;
const ENTRY_NAME = 'tskit.conf';

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/** Seeds every derived identifier: the same payload, mode, size and time give the same ids. */
function seedOf(payload: BootPayload, parts: Array<string | number>): string {
  return createHash('sha256').update([payload.kernel.sha256, payload.initrd.sha256, payload.cmdline, ...parts].join('\0')).digest('hex');
}

const u32 = (seed: string, label: string) => createHash('sha256').update(`${seed}:${label}`).digest().readUInt32LE(0);

/** systemd-boot's loader.conf and the Boot Loader Specification entry for the payload. */
function efiFiles(payload: BootPayload, loader: BootloaderFiles): FatFile[] {
  const {systemdBoot} = need(loader, ['systemdBoot'], 'UEFI boot');
  const conf = `timeout 0\ndefault ${ENTRY_NAME}\neditor no\n`;
  const entry = `title tskit\nlinux /kernel\ninitrd /initrd.img\noptions ${payload.cmdline}\n`;
  return [
    {path: 'EFI/BOOT/BOOTX64.EFI', content: bufferContent(systemdBoot)},
    {path: 'loader/loader.conf', content: bufferContent(Buffer.from(conf))},
    {path: `loader/entries/${ENTRY_NAME}`, content: bufferContent(Buffer.from(entry))},
  ];
}

function payloadFiles(payload: BootPayload): FatFile[] {
  return [
    {path: 'kernel', content: fileContent(payload.kernel.path, payload.kernel.size)},
    {path: 'initrd.img', content: fileContent(payload.initrd.path, payload.initrd.size)},
  ];
}

function syslinuxCfg(payload: BootPayload, paths: {kernel: string; initrd: string}): Buffer {
  return Buffer.from(`DEFAULT tskit\nPROMPT 0\nTIMEOUT 0\nLABEL tskit\n  LINUX ${paths.kernel}\n  INITRD ${paths.initrd}\n  APPEND ${payload.cmdline}\n`);
}

/** SYSLINUX's files on a FAT volume; ldlinux.sys's bytes are settled once its sectors are known. */
function syslinuxFiles(payload: BootPayload, loader: BootloaderFiles) {
  const files = need(loader, ['ldlinuxBss', 'ldlinuxSys', 'ldlinuxC32'], 'BIOS boot from a disk');
  const unpatched = ldlinuxFile(files.ldlinuxSys);
  let patched: Buffer | undefined;
  const ldlinux: Content = {
    size: unpatched.length,
    async *chunks() {
      if (!patched) throw new Error('ldlinux.sys was not patched: the boot sector hook did not run');
      yield patched;
    },
  };
  const fat: FatFile[] = [
    {path: 'ldlinux.sys', content: ldlinux, attributes: ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM},
    {path: 'ldlinux.c32', content: bufferContent(files.ldlinuxC32), attributes: ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM},
    {path: 'syslinux.cfg', content: bufferContent(syslinuxCfg(payload, {kernel: '/kernel', initrd: '/initrd.img'}))},
  ];
  const install = (bootSector: Buffer, firstSector: number) => {
    patched = installSyslinux({bss: files.ldlinuxBss, coreLength: files.ldlinuxSys.length, file: unpatched, firstSector, bootSector});
  };
  return {fat, install};
}

/** A bootable partitioned disk for `payload`. */
export function bootDisk(payload: BootPayload, loader: BootloaderFiles, options: DiskLayoutOptions): BootDisk {
  const {boot} = options;
  const multiple = Math.max(SECTOR, options.multiple ?? SECTOR);
  const gpt = boot !== 'bios';
  const efi = gpt ? efiFiles(payload, loader) : [];
  const bios = boot !== 'efi' ? syslinuxFiles(payload, loader) : undefined;
  const files: FatFile[] = [...(bios?.fat ?? []), ...efi, ...payloadFiles(payload)];
  const type: FatType = 32;
  const espSize = fatSizeFor(files, type);
  const dataSize = roundUp(options.dataSize ?? 0, MiB);
  // GPT keeps its backup in the last 33 sectors: a whole MiB keeps partitions aligned.
  const tail = gpt ? MiB : 0;
  const minimum = PARTITION_START + espSize + dataSize + tail;
  // the targets' multiples are powers of two: the larger of it and 1 MiB is a multiple of both
  const size = options.size ?? roundUp(minimum, Math.max(multiple, MiB));
  if (size % multiple !== 0) throw new TskitError(`disk size ${size} bytes is not a multiple of ${multiple} bytes, as this format requires`);
  if (size < minimum) throw new TskitError(`disk size ${size} bytes is too small: this image needs at least ${minimum} bytes (${Math.ceil(minimum / MiB)} MiB)`);
  const sectors = size / SECTOR;
  const seed = seedOf(payload, [boot, size, dataSize, options.mtime]);
  const espStart = PARTITION_START / SECTOR;

  const volume = fatVolume({
    size: espSize,
    files,
    hiddenSectors: espStart,
    volumeId: u32(seed, 'fat-volume-id'),
    label: gpt ? 'EFI' : 'TSKIT',
    mtime: options.mtime,
    type,
    ...(bios ? {bootSector: (sector, v) => bios.install(sector, v.fileSectors('ldlinux.sys').first)} : {}),
  });
  const regions: Region[] = shiftRegions(volume.regions, PARTITION_START);
  const partitions: BootDisk['partitions'] = [{name: gpt ? 'EFI system partition' : 'boot', offset: PARTITION_START, size: espSize}];
  const dataStart = PARTITION_START + espSize;
  if (dataSize > 0) partitions.push({name: 'data', offset: dataStart, size: dataSize});

  if (gpt) {
    const gptPartitions: GptPartition[] = [
      {
        type: ESP_TYPE,
        guid: derivedGuid(`${seed}:esp`),
        name: 'EFI system partition',
        start: espStart,
        end: espStart + espSize / SECTOR - 1,
        // bit 2: legacy BIOS bootable, the partition SYSLINUX's gptmbr.bin boots
        ...(bios ? {attributes: 1n << 2n} : {}),
      },
    ];
    if (dataSize > 0) gptPartitions.push({type: LINUX_DATA_TYPE, guid: derivedGuid(`${seed}:data`), name: 'data', start: dataStart / SECTOR, end: (dataStart + dataSize) / SECTOR - 1});
    const mbrCode = bios ? need(loader, ['gptmbr'], 'hybrid boot').gptmbr : undefined;
    regions.push(...gptRegions({sectors, diskGuid: derivedGuid(`${seed}:disk`), partitions: gptPartitions, ...(mbrCode ? {mbrCode} : {}), mbrSignature: u32(seed, 'mbr')}));
    if (sectors - 1 - GPT_ENTRY_SECTORS <= (dataStart + dataSize) / SECTOR) throw new Error('GPT backup overlaps the partitions');
  } else {
    const {mbr: code} = need(loader, ['mbr'], 'BIOS boot from a disk');
    const parts: MbrPartition[] = [{bootable: true, type: 0x0c, start: espStart, sectors: espSize / SECTOR}];
    if (dataSize > 0) parts.push({type: 0x83, start: dataStart / SECTOR, sectors: dataSize / SECTOR});
    regions.push({offset: 0, content: bufferContent(mbr({code, signature: u32(seed, 'mbr'), partitions: parts}))});
  }
  return {size, partitions, extents: () => regionExtents(regions, size)};
}

/** A bootable ISO: `efi` (El Torito UEFI entry: a FAT image with systemd-boot, kernel and initrd) or `bios` (ISOLINUX, hybrid). */
export function bootIso(payload: BootPayload, loader: BootloaderFiles, options: {boot: 'efi' | 'bios'; mtime: number}): DiskImage {
  const seed = seedOf(payload, ['iso', options.boot, options.mtime]);
  if (options.boot === 'efi') {
    const files = [...efiFiles(payload, loader), ...payloadFiles(payload)];
    const type: FatType = 16;
    let fatSize: number;
    try {
      fatSize = fatSizeFor(files, type, 64 * 1024);
    } catch {
      fatSize = fatSizeFor(files, 32, 64 * 1024);
    }
    const volume = fatVolume({size: fatSize, files, volumeId: u32(seed, 'fat-volume-id'), label: 'EFIBOOT', mtime: options.mtime});
    const imagePath = 'BOOT/EFIBOOT.IMG';
    const virtualSectors = fatSize / SECTOR;
    const layout = isoLayout({
      files: [{path: imagePath, size: fatSize, content: () => volume.regions}],
      volumeId: 'TSKIT',
      mtime: options.mtime,
      // A count that does not fit 16 bits says "the rest of the medium" (0), and the image comes last.
      boot: {catalogPath: 'BOOT/BOOT.CAT', entries: [{platform: 0xef, path: imagePath, loadSectors: virtualSectors <= 0xffff ? virtualSectors : 0}]},
      padTo: MiB,
      // As a disk, an MBR partition of type 0xEF over the FAT image lets UEFI boot it too.
      systemArea: (l) => mbr({signature: u32(seed, 'mbr'), partitions: [{type: 0xef, start: l.fileLba(imagePath) * (ISO_BLOCK / SECTOR), sectors: virtualSectors}]}),
    });
    return {size: layout.size, extents: () => regionExtents(layout.regions, layout.size)};
  }
  const bios = need(loader, ['isolinux', 'isohdpfx', 'ldlinuxC32'], 'a BIOS ISO');
  if (!isHybridIsolinux(bios.isolinux)) throw new TskitError('bootloader image: isolinux.bin has no isohybrid signature (SYSLINUX 4 or later is needed)');
  const isolinuxPath = 'ISOLINUX/ISOLINUX.BIN';
  const files: IsoFile[] = [
    {path: isolinuxPath, size: bios.isolinux.length, content: (lba) => bufferContent(isolinuxBootInfo(bios.isolinux, 16, lba))},
    {path: 'ISOLINUX/LDLINUX.C32', size: bios.ldlinuxC32.length, content: () => bufferContent(bios.ldlinuxC32)},
    {path: 'ISOLINUX/ISOLINUX.CFG', ...sized(syslinuxCfg(payload, {kernel: '/KERNEL', initrd: '/INITRD.IMG'}))},
    {path: 'KERNEL', size: payload.kernel.size, content: () => fileContent(payload.kernel.path, payload.kernel.size)},
    {path: 'INITRD.IMG', size: payload.initrd.size, content: () => fileContent(payload.initrd.path, payload.initrd.size)},
  ];
  const layout = isoLayout({
    files,
    volumeId: 'TSKIT',
    mtime: options.mtime,
    boot: {catalogPath: 'ISOLINUX/BOOT.CAT', entries: [{platform: 0, path: isolinuxPath, loadSectors: 4}]},
    padTo: MiB,
    systemArea: (l) => isohybridMbr({code: bios.isohdpfx, bootFileLba: l.fileLba(isolinuxPath), imageBytes: l.size, signature: u32(seed, 'mbr')}),
  });
  return {size: layout.size, extents: () => regionExtents(layout.regions, layout.size)};
}

function sized(data: Buffer): {size: number; content: () => Content} {
  return {size: data.length, content: () => bufferContent(data)};
}
