// Works out what a PATH given to `tskit run qemu` is and how qemu should boot it:
// a kernel+initrd prefix (out/hello -> out/hello-kernel, -initrd.img, -cmdline), a directory
// holding one, or a disk image whose format comes from its magic bytes, else its extension.
// Also decides whether the image can only boot under UEFI (an EFI-only disk or ISO).
import {open, readFile, readdir, stat} from 'node:fs/promises';
import {basename, dirname, extname, join} from 'node:path';
import {TskitError} from '../../src/errors.ts';
import {openDisk, sniffDiskFormat} from '../../src/formats/decode.ts';

export type DiskFormat = 'raw' | 'qcow2' | 'vpc' | 'vhdx' | 'vmdk';

export interface KernelInitrdImage {
  kind: 'kernel+initrd';
  /** For console prefixes and the instance name: "hello" for out/hello. */
  name: string;
  kernel: string;
  /** Absent for kernel+squashfs and kernel+erofs, whose root is `rootDisk`. */
  initrd?: string;
  /** kernel+squashfs / kernel+erofs: the root filesystem image, attached as /dev/sda (LinuxKit's way). */
  rootDisk?: string;
  /** kernel+iso: the root filesystem ISO, attached as the first CD (/dev/sr0). */
  rootCdrom?: string;
  /** The -cmdline file's text (trimmed), or "console=ttyS0" when there is none. */
  cmdline: string;
  cmdlineFile?: string;
  /** Only when the caller's format says so: a kernel boots under either firmware. */
  needsUefi: boolean;
  uefiReason?: string;
}

export interface DiskImage {
  kind: 'disk';
  name: string;
  path: string;
  format: DiskFormat;
  media: 'disk' | 'cdrom';
  needsUefi: boolean;
  /** Why UEFI was chosen, for a log line. */
  uefiReason?: string;
}

export type BootImage = KernelInitrdImage | DiskImage;

/** LinuxKit output formats `tskit run qemu` boots (what the provider's `accepts` lists). */
export const bootableFormats = [
  'kernel+initrd',
  'kernel+squashfs',
  'kernel+erofs',
  'kernel+iso',
  'raw-bios',
  'raw-efi',
  'qcow2-bios',
  'qcow2-efi',
  'iso-bios',
  'iso-efi',
  'iso-efi-initrd',
  'vhd',
  'dynamic-vhd',
  'vhdx',
  'vmdk',
] as const;

const extensionFormats: Record<string, DiskFormat> = {
  '.img': 'raw',
  '.raw': 'raw',
  '.qcow2': 'qcow2',
  '.vhd': 'vpc',
  '.vhdx': 'vhdx',
  '.vmdk': 'vmdk',
  '.iso': 'raw',
};

const kernelSuffixes = ['-kernel', '-initrd.img', '-cmdline', '-squashfs.img', '-erofs.img'];

export async function resolveImage(path: string, formatHint?: string): Promise<BootImage> {
  const hintUefi = formatHint !== undefined && /-efi(-initrd)?$/.test(formatHint);
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) return kernelInitrdInDirectory(path, hintUefi);
  if (info?.isFile()) {
    const suffix = kernelSuffixes.find((s) => path.endsWith(s));
    if (suffix) {
      const named = {'-squashfs.img': 'kernel+squashfs', '-erofs.img': 'kernel+erofs', '-initrd.img': 'kernel+initrd'}[suffix];
      return kernelInitrd(path.slice(0, -suffix.length), hintUefi, named ?? formatHint);
    }
    if (formatHint?.startsWith('kernel+')) return kernelInitrd(path, hintUefi, formatHint);
    if (/\.(tar|tgz|tar\.gz)$/.test(path)) {
      throw new TskitError(`${path}: tar-kernel-initrd archives are not booted directly yet; unpack it, or build kernel+initrd`, {exitCode: 125});
    }
    return diskImage(path, formatHint, hintUefi);
  }
  if (await isFile(`${path}-kernel`)) return kernelInitrd(path, hintUefi, formatHint);
  throw new TskitError(`${path}: no such image (looked for the file, and for ${path}-kernel with ${path}-initrd.img)`, {exitCode: 125});
}

async function kernelInitrd(prefix: string, hintUefi: boolean, formatHint?: string): Promise<KernelInitrdImage> {
  // A directory prefix ("out/") names files "kernel", "initrd.img", "cmdline" as tar-kernel-initrd has them.
  const sep = prefix.endsWith('/') || prefix === '' ? '' : '-';
  const kernel = `${prefix}${sep}kernel`;
  const cmdlineFile = `${prefix}${sep}cmdline`;
  const root = await kernelRoot(prefix, sep, formatHint);
  for (const [file, what] of [[kernel, 'kernel'], [root.file, root.what]] as const) {
    if (!(await isFile(file))) throw new TskitError(`${prefix}: the ${what} ${file} is missing`, {exitCode: 125});
  }
  const cmdlineText = await readFile(cmdlineFile, 'utf8').catch(() => undefined);
  const name = basename(sep ? prefix : dirname(`${prefix}x`)) || 'qemu';
  const cmdline = cmdlineText === undefined ? 'console=ttyS0' : cmdlineText.trim().replace(/\s+/g, ' ');
  return {
    kind: 'kernel+initrd',
    name,
    kernel,
    ...(root.what === 'initrd' ? {initrd: root.file} : root.what === 'iso root' ? {rootCdrom: root.file} : {rootDisk: root.file}),
    // as LinuxKit's run qemu: the root filesystem image is the first disk (an ISO: the first CD)
    cmdline: root.what === 'initrd' ? cmdline : `${cmdline} root=${root.what === 'iso root' ? '/dev/sr0' : '/dev/sda'}`,
    ...(cmdlineText === undefined ? {} : {cmdlineFile}),
    needsUefi: hintUefi,
    ...(hintUefi ? {uefiReason: 'the image format is an -efi one'} : {}),
  };
}

/**
 * What the kernel boots into: NAME-squashfs.img when there is one (LinuxKit's order), else
 * NAME-initrd.img, else NAME-erofs.img, else NAME.iso; a kernel+ format hint picks one.
 */
async function kernelRoot(prefix: string, sep: string, formatHint?: string): Promise<{file: string; what: string}> {
  const candidates = [
    {format: 'kernel+squashfs', file: `${prefix}${sep}squashfs.img`, what: 'squashfs root'},
    {format: 'kernel+initrd', file: `${prefix}${sep}initrd.img`, what: 'initrd'},
    {format: 'kernel+erofs', file: `${prefix}${sep}erofs.img`, what: 'erofs root'},
    {format: 'kernel+iso', file: `${prefix}.iso`, what: 'iso root'},
  ];
  const hinted = candidates.find((c) => c.format === formatHint);
  if (hinted) return hinted;
  for (const candidate of candidates) if (await isFile(candidate.file)) return candidate;
  return candidates[1]!;
}

async function kernelInitrdInDirectory(dir: string, hintUefi: boolean): Promise<KernelInitrdImage> {
  const entries = await readdir(dir);
  const prefixes = entries.filter((e) => e.endsWith('-kernel')).map((e) => join(dir, e.slice(0, -'-kernel'.length)));
  if (prefixes.length === 1) return kernelInitrd(prefixes[0]!, hintUefi);
  if (prefixes.length > 1) {
    throw new TskitError(`${dir}: holds several kernels (${prefixes.map((p) => basename(p)).join(', ')}); name one, e.g. ${prefixes[0]}`, {exitCode: 125});
  }
  for (const sub of ['', 'boot/']) {
    if (await isFile(join(dir, sub, 'kernel'))) {
      const image = await kernelInitrd(`${join(dir, sub).replace(/\/$/, '')}/`, hintUefi);
      return {...image, name: basename(dir)};
    }
  }
  throw new TskitError(`${dir}: no NAME-kernel (or kernel and initrd.img) in this directory`, {exitCode: 125});
}

async function diskImage(path: string, formatHint: string | undefined, hintUefi: boolean): Promise<DiskImage> {
  const head = await readAt(path, 0, 512);
  const iso = (await readAt(path, 0x8001, 5)).toString('latin1') === 'CD001';
  const sniffed = sniffFormat(head, await readTail(path, 512));
  const ext = extname(path).toLowerCase();
  const format: DiskFormat = sniffed ?? (formatHint ? formatFromHint(formatHint) : undefined) ?? extensionFormats[ext] ?? 'raw';
  const media = iso || ext === '.iso' || formatHint?.startsWith('iso') ? 'cdrom' : 'disk';
  const name = basename(path, extname(path)).replace(/-(bios|efi)$/, '') || 'qemu';
  let uefiReason: string | undefined = hintUefi ? 'the image format is an -efi one' : /-efi\.[a-z0-9]+$/i.test(path) ? 'its name ends in -efi' : undefined;
  if (!uefiReason && format === 'raw') uefiReason = media === 'cdrom' ? await isoNeedsUefi(path) : mbrNeedsUefi(head, await readAt(path, 512, 8));
  return {kind: 'disk', name, path, format, media, needsUefi: uefiReason !== undefined, ...(uefiReason ? {uefiReason} : {})};
}

/** The qemu block driver a disk's magic bytes name (src/formats' sniffer); undefined for raw (no magic). */
export function sniffFormat(head: Buffer, tail: Buffer): DiskFormat | undefined {
  const format = sniffDiskFormat(head, tail);
  return format === 'vhd' ? 'vpc' : format === 'qcow2' || format === 'vhdx' || format === 'vmdk' ? format : undefined;
}

function formatFromHint(hint: string): DiskFormat | undefined {
  if (hint.startsWith('qcow2')) return 'qcow2';
  if (hint === 'vhd' || hint === 'dynamic-vhd') return 'vpc';
  if (hint === 'vhdx' || hint === 'vmdk') return hint;
  if (hint.startsWith('raw') || hint.startsWith('iso')) return 'raw';
  return undefined;
}

/**
 * A raw disk SeaBIOS cannot boot but OVMF can: no boot code in the MBR, and a GPT or an
 * EFI system partition (how LinuxKit's raw-efi and most EFI-only images look).
 */
export function mbrNeedsUefi(sector0: Buffer, sector1Start: Buffer): string | undefined {
  if (sector0.length < 512) return undefined;
  const signed = sector0[510] === 0x55 && sector0[511] === 0xaa;
  const hasBootCode = sector0.subarray(0, 440).some((b) => b !== 0);
  if (signed && hasBootCode) return undefined;
  const gpt = sector1Start.toString('latin1') === 'EFI PART';
  const types = [0, 1, 2, 3].map((i) => sector0[446 + 16 * i + 4]);
  if (gpt || (signed && types.some((t) => t === 0xee || t === 0xef))) return 'the disk has no BIOS boot code but an EFI partition table';
  return undefined;
}

/** An ISO whose El Torito catalog has EFI boot entries and no BIOS one (the boot probe reads the catalog). */
async function isoNeedsUefi(path: string): Promise<string | undefined> {
  const disk = await openDisk(path, {format: 'iso'});
  try {
    const catalog = (await disk.probe()).elTorito;
    return catalog?.efi && !catalog.bios ? 'the ISO has only EFI boot entries' : undefined;
  } finally {
    await disk.close();
  }
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const {bytesRead} = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function readTail(path: string, length: number): Promise<Buffer> {
  const {size} = await stat(path);
  return size < length ? Buffer.alloc(0) : readAt(path, size - length, length);
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
