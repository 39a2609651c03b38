// The bootable outputs (LinuxKit's format names and file names): the build's kernel, initrd
// and command line are staged to scratch files once per build, laid out as a disk or ISO
// (src/formats/layout.ts) and written by the container encoder the format names.
import {createReadStream} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {basename, join} from 'node:path';
import {TskitError} from '../errors.ts';
import type {BootloaderFiles} from '../formats/bootloader.ts';
import {checkMaxSize, encodeDisk, sizeMultiple, type ContainerFormat} from '../formats/encode.ts';
import {bootDisk, bootIso, type BootMode, type BootPayload} from '../formats/layout.ts';
import {writeBytes} from './byte-sink.ts';
import type {Entry} from './entry.ts';
import {splitKernelInitrd, type Artifact, type OutputTarget, type WriteContext} from './outputs.ts';

export const DISK_FORMATS = ['raw-efi', 'raw-bios', 'iso-efi', 'iso-efi-initrd', 'iso-bios', 'qcow2-efi', 'qcow2-bios', 'vhd', 'dynamic-vhd', 'vhdx', 'vmdk', 'gcp', 'aws'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

interface DiskFormatSpec {
  /** Appended to NAME, as LinuxKit names the file. */
  suffix: string;
  layout: 'disk' | 'iso';
  container: ContainerFormat;
  /** The boot modes the format allows; the first is its default. */
  boots: BootMode[];
}

const ANY: BootMode[] = ['hybrid', 'efi', 'bios'];

export const DISK_FORMAT_SPECS: Record<DiskFormat, DiskFormatSpec> = {
  'raw-efi': {suffix: '-efi.img', layout: 'disk', container: 'raw', boots: ['efi']},
  'raw-bios': {suffix: '-bios.img', layout: 'disk', container: 'raw', boots: ['bios']},
  'iso-efi': {suffix: '-efi.iso', layout: 'iso', container: 'raw', boots: ['efi']},
  // LinuxKit's name for a UEFI ISO that boots the kernel and initrd: tskit's iso-efi already is one
  'iso-efi-initrd': {suffix: '-efi-initrd.iso', layout: 'iso', container: 'raw', boots: ['efi']},
  'iso-bios': {suffix: '.iso', layout: 'iso', container: 'raw', boots: ['bios']},
  'qcow2-efi': {suffix: '-efi.qcow2', layout: 'disk', container: 'qcow2', boots: ['efi']},
  'qcow2-bios': {suffix: '.qcow2', layout: 'disk', container: 'qcow2', boots: ['bios']},
  // Cloud and hypervisor disks boot both ways by default: every target boots UEFI today,
  // and the same file still boots where only BIOS is offered (Azure Gen1, Hyper-V Gen1).
  vhd: {suffix: '.vhd', layout: 'disk', container: 'vhd', boots: ANY},
  'dynamic-vhd': {suffix: '-dynamic.vhd', layout: 'disk', container: 'dynamic-vhd', boots: ANY},
  vhdx: {suffix: '.vhdx', layout: 'disk', container: 'vhdx', boots: ANY},
  vmdk: {suffix: '.vmdk', layout: 'disk', container: 'vmdk', boots: ANY},
  gcp: {suffix: '.img.tar.gz', layout: 'disk', container: 'gcp', boots: ANY},
  aws: {suffix: '.raw', layout: 'disk', container: 'raw', boots: ANY},
};

export function isDiskFormat(format: string): format is DiskFormat {
  return (DISK_FORMATS as readonly string[]).includes(format);
}

export function diskOutputPath(format: DiskFormat, target: OutputTarget): string {
  return target.file ?? join(target.dir, `${target.name}${DISK_FORMAT_SPECS[format].suffix}`);
}

export interface DiskOptions {
  /** --boot: must be one the format allows; default: the format's own. */
  boot?: BootMode;
  /** --size in bytes; default: the smallest that fits, rounded as the target requires. */
  size?: number;
  /** --data-size: an empty data partition of this many bytes after the boot partition. */
  dataSize?: number;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH): timestamps and derived identifiers. */
  mtime: number;
  /** The bootloader image's files (resolved once, when the first bootable format needs them). */
  bootloader(): Promise<BootloaderFiles>;
}

/** Checks the flags against the formats before anything is pulled or written. */
export function checkDiskOptions(formats: DiskFormat[], options: Pick<DiskOptions, 'boot' | 'size' | 'dataSize'>): void {
  for (const format of formats) {
    const spec = DISK_FORMAT_SPECS[format];
    if (options.boot && !spec.boots.includes(options.boot)) {
      throw new TskitError(`--boot ${options.boot} does not apply to ${format}, which boots ${spec.boots.join(' or ')} only (its name says which)`);
    }
    if (spec.layout === 'iso' && (options.size !== undefined || options.dataSize)) throw new TskitError(`--size and --data-size apply to disks, not to ${format}`);
    const multiple = sizeMultiple(spec.container);
    if (options.size !== undefined) checkMaxSize(spec.container, options.size, `--size ${options.size} bytes`);
    if (options.size !== undefined && options.size % multiple !== 0) {
      throw new TskitError(`--size ${options.size} bytes: ${format} needs a whole number of ${multiple >= 1 << 30 ? `${multiple >> 30} GiB` : multiple >= 1 << 20 ? `${multiple >> 20} MiB` : `${multiple}-byte sectors`}`);
    }
  }
}

/** Writes bootable formats; stages the kernel, initrd and command line once for all of them. */
export class DiskOutputs {
  private payload: Promise<BootPayload> | undefined;
  private readonly options: DiskOptions;

  constructor(options: DiskOptions) {
    this.options = options;
  }

  async write(format: DiskFormat, entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext): Promise<Artifact[]> {
    const path = diskOutputPath(format, target);
    if (path === '-') throw new TskitError(`${format} cannot go to standard output`);
    const spec = DISK_FORMAT_SPECS[format];
    const boot = this.options.boot ?? spec.boots[0]!;
    const payload = await (this.payload ??= stagePayload(entries, path, ctx));
    const loader = await this.options.bootloader();
    const image =
      spec.layout === 'iso'
        ? bootIso(payload, loader, {boot: boot === 'bios' ? 'bios' : 'efi', mtime: this.options.mtime})
        : bootDisk(payload, loader, {
            boot,
            multiple: sizeMultiple(spec.container),
            mtime: this.options.mtime,
            ...(this.options.size !== undefined ? {size: this.options.size} : {}),
            ...(this.options.dataSize ? {dataSize: this.options.dataSize} : {}),
          });
    const staged = ctx.staged.stage(path);
    const written = await encodeDisk(spec.container, image, staged, {
      name: basename(path),
      ...(ctx.signal ? {signal: ctx.signal} : {}),
      progress: (done) => ctx.emit({type: 'progress', task: `write ${path}`, done, unit: 'bytes'}),
    });
    return [{path, format, size: written.size, sha256: written.sha256}];
  }
}

/** The kernel, the initrd (early microcode first, when there is one) and the command line, as scratch files. */
async function stagePayload(entries: AsyncIterable<Entry>, near: string, ctx: WriteContext): Promise<BootPayload> {
  const scratch = {
    kernel: ctx.staged.scratchFile(near, 'kernel'),
    initrd: ctx.staged.scratchFile(near, 'initrd'),
    cmdline: ctx.staged.scratchFile(near, 'cmdline'),
    ucode: ctx.staged.scratchFile(near, 'ucode'),
  };
  const parts = await splitKernelInitrd(entries, scratch, ctx, `${near} (kernel and initrd)`);
  let initrd = parts.initrd;
  if (parts.ucode) {
    const combined = ctx.staged.scratchFile(near, 'ucode-initrd');
    const sources = [parts.ucode.path, parts.initrd.path];
    const written = await writeBytes((async function* () {
      for (const source of sources) yield* createReadStream(source);
    })(), combined, ctx.signal ? {signal: ctx.signal} : {});
    initrd = {path: combined, ...written};
  }
  const cmdline = (await readFile(parts.cmdline.path, 'utf8')).trim().replace(/\s+/g, ' ');
  return {kernel: parts.kernel, initrd, cmdline};
}
