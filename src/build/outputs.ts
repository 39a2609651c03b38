// The build outputs LinuxKit names tar, kernel+initrd and tar-kernel-initrd, each written
// from the assembled entry stream under staged names and renamed together at the end
// (bootable disk and ISO formats: disk-outputs.ts).
import {createReadStream} from 'node:fs';
import {join} from 'node:path';
import {TskitError} from '../errors.ts';
import type {Emit} from '../events.ts';
import {writeBytes, type Written} from './byte-sink.ts';
import type {DiskFormat} from './disk-outputs.ts';
import type {RootfsFormat} from './rootfs-outputs.ts';
import {writeCpio} from './cpio.ts';
import {drain, generatedMtime, type Entry} from './entry.ts';
import {StagedFiles} from './staged-files.ts';
import {writeTar} from './tar/writer.ts';

export const BUILD_FORMATS = ['tar', 'kernel+initrd', 'tar-kernel-initrd'] as const;
export type BuildFormat = (typeof BUILD_FORMATS)[number];

export interface OutputTarget {
  dir: string;
  name: string;
  /** A single output file instead of the derived names ('-' is standard output; tar only). */
  file?: string;
}

/**
 * Output names are file names: every output is `dir/NAME<suffix>`, so a name with a slash,
 * or "." or "..", would write outside the output directory.
 */
export function checkOutputName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new TskitError(`the output name ${JSON.stringify(name)} is not a file name: give a name without "/" (the outputs go in the output directory, --dir)`, {exitCode: 2});
  }
}

/** The files a format produces, in the order LinuxKit lists them. */
export function outputPaths(format: BuildFormat, target: OutputTarget): string[] {
  if (target.file) return [target.file];
  const base = join(target.dir, target.name);
  switch (format) {
    case 'tar':
      return [`${base}.tar`];
    case 'kernel+initrd':
      return [`${base}-kernel`, `${base}-initrd.img`, `${base}-cmdline`];
    case 'tar-kernel-initrd':
      return [`${base}-initrd.tar`];
  }
}

export interface Artifact {
  path: string;
  format: BuildFormat | DiskFormat | RootfsFormat;
  size: number;
  sha256: string;
}

export interface WriteContext {
  staged: StagedFiles;
  emit: Emit;
  signal?: AbortSignal;
}

export async function writeFormat(format: BuildFormat, entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext): Promise<Artifact[]> {
  switch (format) {
    case 'tar':
      return writeTarOutput(entries, target, ctx);
    case 'kernel+initrd':
      return writeKernelInitrd(entries, target, ctx);
    case 'tar-kernel-initrd':
      return writeKernelInitrdTar(entries, target, ctx);
  }
}

function progressFor(ctx: WriteContext, path: string) {
  return (done: number) => ctx.emit({type: 'progress', task: `write ${path}`, done, unit: 'bytes'});
}

async function writeTarOutput(entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext): Promise<Artifact[]> {
  const [path] = outputPaths('tar', target) as [string];
  if (path === '-') {
    const written = await writeBytes(writeTar(entries), '/dev/stdout', {signal: ctx.signal});
    return [{path, format: 'tar', ...written}];
  }
  const written = await writeBytes(writeTar(entries), ctx.staged.stage(path), {signal: ctx.signal, progress: progressFor(ctx, path)});
  return [{path, format: 'tar', ...written}];
}

export interface KernelInitrdParts {
  kernel: Written & {path: string};
  initrd: Written & {path: string};
  cmdline: Written & {path: string};
  ucode?: Written & {path: string};
}

/**
 * Splits boot/kernel, boot/cmdline and boot/ucode.cpio out of the stream (into the paths
 * given) and writes everything else, boot/ itself included, as a gzip'd newc cpio.
 */
export async function splitKernelInitrd(
  entries: AsyncIterable<Entry>,
  paths: {kernel: string; initrd: string; cmdline: string; ucode: string},
  ctx: WriteContext,
  label: string,
): Promise<KernelInitrdParts> {
  let kernel: (Written & {path: string}) | undefined;
  let cmdline: (Written & {path: string}) | undefined;
  let ucode: (Written & {path: string}) | undefined;
  const rest = async function* (): AsyncGenerator<Entry> {
    for await (const entry of entries) {
      if (entry.path === 'boot/kernel') {
        kernel = {path: paths.kernel, ...(await writeBytes(entry.content ?? [], paths.kernel, {signal: ctx.signal}))};
      } else if (entry.path === 'boot/cmdline') {
        cmdline = {path: paths.cmdline, ...(await writeBytes(entry.content ?? [], paths.cmdline, {signal: ctx.signal}))};
      } else if (entry.path === 'boot/ucode.cpio') {
        ucode = {path: paths.ucode, ...(await writeBytes(entry.content ?? [], paths.ucode, {signal: ctx.signal}))};
      } else if (entry.path.startsWith('boot/')) {
        await drain(entry);
      } else {
        yield entry;
      }
    }
  };
  const initrd = {path: paths.initrd, ...(await writeBytes(writeCpio(rest()), paths.initrd, {gzip: true, signal: ctx.signal, progress: progressFor(ctx, label)}))};
  if (!kernel) throw new TskitError('kernel+initrd output needs a kernel: the configuration has no kernel image, or it gave no kernel file');
  cmdline ??= {path: paths.cmdline, ...(await writeBytes([], paths.cmdline))};
  return ucode ? {kernel, initrd, cmdline, ucode} : {kernel, initrd, cmdline};
}

async function writeKernelInitrd(entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext): Promise<Artifact[]> {
  const [kernelPath, initrdPath, cmdlinePath] = outputPaths('kernel+initrd', target) as [string, string, string];
  const staged = {
    kernel: ctx.staged.stage(kernelPath),
    initrd: ctx.staged.stage(initrdPath),
    cmdline: ctx.staged.stage(cmdlinePath),
    ucode: ctx.staged.scratchFile(initrdPath, 'ucode'),
  };
  const parts = await splitKernelInitrd(entries, staged, ctx, initrdPath);
  let initrd: Written = parts.initrd;
  if (parts.ucode) {
    // Early microcode must come first, uncompressed, before the compressed initramfs.
    const {previous: body, next: combined} = ctx.staged.restage(initrdPath);
    initrd = await writeBytes(concatFiles([parts.ucode.path, body]), combined, {signal: ctx.signal});
  }
  return [
    {path: kernelPath, format: 'kernel+initrd', size: parts.kernel.size, sha256: parts.kernel.sha256},
    {format: 'kernel+initrd', size: initrd.size, sha256: initrd.sha256, path: initrdPath},
    {path: cmdlinePath, format: 'kernel+initrd', size: parts.cmdline.size, sha256: parts.cmdline.sha256},
  ];
}

async function writeKernelInitrdTar(entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext): Promise<Artifact[]> {
  const [path] = outputPaths('tar-kernel-initrd', target) as [string];
  const scratch = {
    kernel: ctx.staged.scratchFile(path, 'kernel'),
    initrd: ctx.staged.scratchFile(path, 'initrd'),
    cmdline: ctx.staged.scratchFile(path, 'cmdline'),
    ucode: ctx.staged.scratchFile(path, 'ucode'),
  };
  const parts = await splitKernelInitrd(entries, scratch, ctx, path);
  const mtime = generatedMtime();
  const member = (name: string, part: Written & {path: string}): Entry => ({
    path: name,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime,
    size: part.size,
    content: createReadStream(part.path),
  });
  const members: Entry[] = [member('kernel', parts.kernel), member('initrd.img', parts.initrd)];
  if (parts.cmdline.size > 0) members.push(member('cmdline', parts.cmdline));
  if (parts.ucode) members.push(member('ucode.cpio', parts.ucode));
  const written = await writeBytes(writeTar(members), ctx.staged.stage(path), {signal: ctx.signal});
  return [{path, format: 'tar-kernel-initrd', ...written}];
}

async function* concatFiles(paths: string[]): AsyncGenerator<Uint8Array> {
  for (const path of paths) yield* createReadStream(path);
}
