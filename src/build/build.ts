// `tskit build` as a library call: resolve every image, then write each requested format
// from the assembled stream. All outputs appear together at the end, or none do.
import {mkdir} from 'node:fs/promises';
import {dirname} from 'node:path';
import type {Emit} from '../events.ts';
import type {ResourceJournal} from '../provider.ts';
import type {MobyConfig} from '../config/types.ts';
import type {ImageSource, LayoutSource, Platform} from '../oci/types.ts';
import {allResolved, assemble, resolveImages} from './assemble.ts';
import {generatedMtime} from './entry.ts';
import {type Artifact, type BuildFormat, checkOutputName, type OutputTarget, writeFormat} from './outputs.ts';
import {StagedFiles} from './staged-files.ts';
import {DEFAULT_BOOTLOADER_IMAGE, loadBootloaderFiles} from './bootloader.ts';
import {checkDiskOptions, DiskOutputs, isDiskFormat, type DiskFormat} from './disk-outputs.ts';
import type {BootloaderFiles} from '../formats/bootloader.ts';
import {isRootfsFormat, writeRootfsFormat, type RootfsFormat} from './rootfs-outputs.ts';
import {planReuse, type ReusePlan} from './input-tar.ts';
import type {BootMode} from '../formats/layout.ts';

export interface BuildRequest {
  config: MobyConfig;
  formats: Array<BuildFormat | DiskFormat | RootfsFormat>;
  target: OutputTarget;
  /** For bootable formats (raw-efi, iso-bios, vhd...): --boot, --size, --data-size, --bootloader-image. */
  disk?: {boot?: BootMode; size?: number; dataSize?: number; bootloaderImage?: string};
  source: ImageSource;
  /** For `volumes:` with `format: oci` (the image cache). */
  layouts?: LayoutSource;
  platform: Platform;
  /** Directory `files: source:` paths are relative to. */
  cwd: string;
  emit: Emit;
  signal?: AbortSignal;
  /** The merged configuration as `files: metadata: json|yaml` writes it. */
  metadata(format: string): string;
  /** Names a YAML location in errors. */
  where?(path: Array<string | number>): string;
  /** Where the build records its temp files before writing them, so `tskit gc` can remove them after a crash. */
  journal?: ResourceJournal;
  /** --decompress-kernel: write the kernel decompressed, as LinuxKit's flag does. */
  decompressKernel?: boolean;
  /** --input-tar: a previous build's tar, whose unchanged parts are reused (input-tar.ts). */
  inputTar?: string;
}

export async function build(request: BuildRequest): Promise<Artifact[]> {
  if (!request.target.file) checkOutputName(request.target.name);
  const mtime = generatedMtime();
  const diskFormats = request.formats.filter(isDiskFormat);
  if (diskFormats.length > 0) checkDiskOptions(diskFormats, request.disk ?? {});
  let reuse: ReusePlan | undefined;
  if (request.inputTar) {
    const planned = await planReuse(request.inputTar, request.config, request.decompressKernel ?? false);
    request.emit({type: 'log', level: 'info', message: planned.note});
    reuse = planned.plan;
  }
  // Pulls start now and run while assembly works on what has arrived.
  const images = resolveImages(request.config, {source: request.source, platform: request.platform, ...(request.layouts ? {layouts: request.layouts} : {}), ...(reuse ? {skip: reuse.parts} : {})});
  // The bootloader image resolves with the others, so a missing one fails before anything is written.
  const bootloaderRef = request.disk?.bootloaderImage ?? request.config.bootloader?.image ?? DEFAULT_BOOTLOADER_IMAGE;
  const bootloaderImage = diskFormats.length > 0 ? await request.source.resolve(bootloaderRef, request.platform) : undefined;
  let bootloaderFiles: Promise<BootloaderFiles> | undefined;
  const disks = bootloaderImage
    ? new DiskOutputs({
        ...(request.disk?.boot ? {boot: request.disk.boot} : {}),
        ...(request.disk?.size !== undefined ? {size: request.disk.size} : {}),
        ...(request.disk?.dataSize ? {dataSize: request.disk.dataSize} : {}),
        mtime,
        bootloader: () => (bootloaderFiles ??= loadBootloaderFiles(request.source, bootloaderImage, mtime)),
      })
    : undefined;
  request.signal?.throwIfAborted();
  if (!request.target.file) await mkdir(request.target.dir, {recursive: true});
  const staged = new StagedFiles();
  const temps = staged.resource(request.target.file ? dirname(request.target.file) : request.target.dir);
  await request.journal?.record(temps);
  const artifacts: Artifact[] = [];
  try {
    // Each format reads the layers again from the cache: cheaper than holding anything.
    for (const format of request.formats) {
      const reader = reuse?.open();
      const entries = assemble(request.config, images, {
        ...(reader ? {reuse: reader} : {}),
        source: request.source,
        ...(request.layouts ? {layouts: request.layouts} : {}),
        platform: request.platform,
        mtime,
        cwd: request.cwd,
        emit: request.emit,
        metadata: request.metadata,
        ...(request.where ? {where: request.where} : {}),
        ...(request.decompressKernel ? {decompressKernel: true} : {}),
      });
      const ctx = {staged, emit: request.emit, ...(request.signal ? {signal: request.signal} : {})};
      try {
        artifacts.push(
          ...(isDiskFormat(format)
            ? await disks!.write(format, entries, request.target, ctx)
            : isRootfsFormat(format)
              ? await writeRootfsFormat(format, entries, request.target, {...ctx, mtime})
              : await writeFormat(format, entries, request.target, ctx)),
        );
      } finally {
        await reader?.close();
      }
      request.signal?.throwIfAborted();
    }
    await allResolved(images);
    await staged.commit();
  } catch (error) {
    await staged.abort();
    await request.journal?.forget(temps);
    throw error;
  }
  await request.journal?.forget(temps);
  for (const artifact of artifacts) {
    request.emit({type: 'artifact.written', path: artifact.path, format: artifact.format, size: artifact.size, sha256: artifact.sha256});
  }
  return artifacts;
}
