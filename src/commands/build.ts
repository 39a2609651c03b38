import {resolve} from 'node:path';
import {Args, Flags} from '@oclif/core';
import {build} from '../build/build.ts';
import {BUILD_FORMATS, type BuildFormat} from '../build/outputs.ts';
import {layerIndexDeriver} from '../build/layer-index.ts';
import {DEFAULT_BOOTLOADER_IMAGE} from '../build/bootloader.ts';
import {DISK_FORMATS, type DiskFormat} from '../build/disk-outputs.ts';
import {ROOTFS_FORMATS, type RootfsFormat} from '../build/rootfs-outputs.ts';
import {defaultOutputName} from '../build/output-name.ts';
import {BOOT_MODES, type BootMode} from '../formats/layout.ts';
import {parseSize} from '../run/size.ts';
import {loadConfig} from '../config/load.ts';
import {renderMetadata, type MetadataFormat} from '../config/metadata.ts';
import {formatProblem} from '../config/problems.ts';
import {TskitError} from '../errors.ts';
import {ImageCache} from '../oci/cache.ts';
import {cacheLayoutSource} from '../oci/cache-layouts.ts';
import {archFlag, cacheDirFlags, cacheDirFromFlags, jsonFlags, platformsFromArchFlags, pullFlags, downloadFlags, registryFlags, registryOptionsFromFlags} from '../cli/image-flags.ts';
import {createProgressRenderer, formatBytes} from '../cli/progress-render.ts';
import {TskitCommand} from '../cli/command.ts';
import {interruptible} from '../cli/interrupt.ts';
import {openBuildJournal} from '../run/build-journal.ts';
import {stateDir} from '../run/state-dir.ts';

export default class Build extends TskitCommand {
  static override summary = 'Build an image from LinuxKit-format YAML files';
  static override description = `Resolves every image the YAML names (from the cache, pulling what it lacks), assembles the root \
filesystem as LinuxKit does, and writes each requested format. Several files merge in LinuxKit's order. Outputs \
appear together when the build succeeds; a failed or interrupted build leaves none behind.

Formats: tar (NAME.tar), kernel+initrd (NAME-kernel, NAME-initrd.img, NAME-cmdline), tar-kernel-initrd (NAME-initrd.tar), \
kernel+squashfs (NAME-kernel, NAME-cmdline, NAME-squashfs.img), kernel+erofs (NAME-kernel, NAME-cmdline, NAME-erofs.img); \
bootable: raw-efi (NAME-efi.img), raw-bios (NAME-bios.img), iso-efi (NAME-efi.iso), iso-efi-initrd (NAME-efi-initrd.iso), iso-bios (NAME.iso), qcow2-efi \
(NAME-efi.qcow2), qcow2-bios (NAME.qcow2), vhd (NAME.vhd), dynamic-vhd (NAME-dynamic.vhd), vhdx (NAME.vhdx), vmdk \
(NAME.vmdk), gcp (NAME.img.tar.gz), aws (NAME.raw). Bootable formats take their boot loaders from the bootloader image \
(--bootloader-image, or the YAML's tskit extension \`bootloader: {image: REF}\`, default ${DEFAULT_BOOTLOADER_IMAGE}).`;
  static override examples = [
    '<%= config.bin %> build --format kernel+initrd --name hello --dir out templates/hello.yml',
    '<%= config.bin %> build -f tar,kernel+initrd base.yml extras.yml',
    '<%= config.bin %> build -f kernel+squashfs templates/hello.yml',
    'cat hello.yml | <%= config.bin %> build --name hello -',
    '<%= config.bin %> build --mirror localhost:5000=http://127.0.0.1:5001 templates/hello.yml',
    '<%= config.bin %> build -f raw-efi -f iso-bios templates/hello.yml',
    '<%= config.bin %> build -f aws --size 2G --data-size 1G templates/hello.yml',
  ];
  static override args = {files: Args.string({description: 'YAML files (paths, - for stdin, or https URLs)', required: true})};
  static override strict = false;
  static override flags = {
    format: Flags.string({
      char: 'f',
      multiple: true,
      multipleNonGreedy: true,
      delimiter: ',',
      options: [...BUILD_FORMATS, ...ROOTFS_FORMATS, ...DISK_FORMATS],
      description: 'output format (repeatable, or a comma-separated list); default kernel+initrd, or tar with --output',
    }),
    boot: Flags.string({options: BOOT_MODES, description: 'firmware a disk format boots with: efi, bios or hybrid (both); default: the format\'s own (hybrid for vhd, dynamic-vhd, vhdx, vmdk, gcp, aws)'}),
    size: Flags.string({description: 'virtual size of disk formats (e.g. 2G; plain numbers are MiB); default: the smallest that fits, rounded as the target requires'}),
    'data-size': Flags.string({description: 'add an empty data partition of this size after the boot partition (disk formats)'}),
    'bootloader-image': Flags.string({description: `OCI image with the boot loaders for bootable formats (default: the YAML's bootloader.image, else ${DEFAULT_BOOTLOADER_IMAGE})`}),
    name: Flags.string({description: 'name of the outputs (default: the last file\'s name without extension, "moby" for stdin, as LinuxKit)'}),
    dir: Flags.string({description: 'directory for the outputs', default: '.'}),
    output: Flags.string({char: 'o', description: 'write the single output to this file (- for stdout; tar only)'}),
    arch: archFlag,
    'input-tar': Flags.string({description: 'a tar from a previous build of this configuration (with a files: metadata: entry): parts that did not change are taken from it, not pulled and assembled again, as LinuxKit\'s flag', exclusive: ['pull']}),
    'decompress-kernel': Flags.boolean({description: 'write the kernel decompressed (a gzip\'d kernel, or the payload of a bzImage compressed with gzip, lz4 or zstd), as LinuxKit\'s flag'}),
    'dry-run': Flags.boolean({description: 'print the merged configuration (as LinuxKit\'s metadata: yaml) and stop'}),
    ...pullFlags,
    ...cacheDirFlags,
    ...registryFlags,
    ...downloadFlags,
    ...jsonFlags,
  };

  async run(): Promise<void> {
    const {flags, argv} = await this.parse(Build);
    const files = argv as string[];
    const formats = [...new Set(flags.format ?? [flags.output ? 'tar' : 'kernel+initrd'])] as Array<BuildFormat | DiskFormat | RootfsFormat>;
    if (flags.output && (formats.length !== 1 || (flags.output === '-' && formats[0] !== 'tar'))) {
      throw new TskitError('--output takes exactly one format, and - (stdout) only with --format tar');
    }
    if (flags['input-tar'] && flags.output && resolve(flags['input-tar']) === resolve(flags.output)) throw new TskitError('--input-tar and --output cannot be the same file');
    const render = createProgressRenderer(flags.json, flags.output === '-' ? process.stderr : process.stdout);

    const loaded = await loadConfig(files);
    for (const warning of loaded.warnings ?? []) render.emit({type: 'log', level: 'warn', message: formatProblem(warning)});
    if (flags['dry-run']) {
      process.stdout.write(renderMetadata(loaded.config, 'yaml'));
      return;
    }
    const name = flags.name ?? defaultOutputName(files);

    const [platform] = platformsFromArchFlags(flags.arch);
    const registry = await registryOptionsFromFlags(flags, render.emit);
    const interruption = new AbortController(); // Ctrl-C also stops downloads in flight
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit, registry: {...registry, signal: interruption.signal}, pull: flags.pull, derivers: [layerIndexDeriver]});
    const journal = await openBuildJournal(stateDir(), render.emit);
    const started = Date.now();
    try {
      const artifacts = await interruptible((signal) => build({
        config: loaded.config,
        formats,
        ...(flags['decompress-kernel'] ? {decompressKernel: true} : {}),
        ...(flags['input-tar'] ? {inputTar: resolve(flags['input-tar'])} : {}),
        disk: {
          ...(flags.boot ? {boot: flags.boot as BootMode} : {}),
          ...(flags.size ? {size: parseSize(flags.size, '--size')} : {}),
          ...(flags['data-size'] ? {dataSize: parseSize(flags['data-size'], '--data-size')} : {}),
          ...(flags['bootloader-image'] ? {bootloaderImage: flags['bootloader-image']} : {}),
        },
        target: {dir: resolve(flags.dir), name, ...(flags.output ? {file: flags.output === '-' ? '-' : resolve(flags.output)} : {})},
        source: cache,
        layouts: cacheLayoutSource(cache),
        platform: platform!,
        cwd: process.cwd(),
        emit: render.emit,
        signal,
        ...(journal ? {journal} : {}),
        metadata: (format) => renderMetadata(loaded.config, format as MetadataFormat),
        where: (path) => {
          const pos = loaded.positionOf(path);
          return pos ? `${pos.file}:${pos.line}:${pos.col}` : path.join('.');
        },
      }), interruption);
      const seconds = (Date.now() - started) / 1000;
      render.result({artifacts, seconds}, () =>
        artifacts
          .filter((a) => a.path !== '-')
          .map((a) => `${a.path}  ${formatBytes(a.size)}  sha256:${a.sha256.slice(0, 16)}…`)
          .concat(`built in ${seconds.toFixed(1)} s`)
          .join('\n'),
      );
    } finally {
      await journal?.close();
      await cache.close();
    }
  }
}
