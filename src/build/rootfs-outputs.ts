// LinuxKit's kernel+squashfs, kernel+erofs and kernel+iso: the kernel and its command line as
// files, and the rest of the root filesystem (boot/ emptied) as a filesystem image the kernel
// mounts as its root (LinuxKit's `run qemu` appends root=/dev/sda; an ISO is /dev/sr0).
// File names as LinuxKit writes them.
import {join} from 'node:path';
import type {Emit} from '../events.ts';
import {writeErofs} from '../formats/erofs.ts';
import {writeSquashfs} from '../formats/squashfs.ts';
import {writeRootfsIso} from '../formats/rootfs-iso.ts';
import {writeBytes, type Written} from './byte-sink.ts';
import {drain, type Entry} from './entry.ts';
import type {Artifact, OutputTarget, WriteContext} from './outputs.ts';
import {TskitError} from '../errors.ts';

export const ROOTFS_FORMATS = ['kernel+squashfs', 'kernel+erofs', 'kernel+iso'] as const;
export type RootfsFormat = (typeof ROOTFS_FORMATS)[number];

const IMAGE_SUFFIX: Record<RootfsFormat, string> = {'kernel+squashfs': '-squashfs.img', 'kernel+erofs': '-erofs.img', 'kernel+iso': '.iso'};

export function isRootfsFormat(format: string): format is RootfsFormat {
  return (ROOTFS_FORMATS as readonly string[]).includes(format);
}

/** NAME-kernel, NAME-cmdline and the filesystem image, in that order. */
export function rootfsOutputPaths(format: RootfsFormat, target: OutputTarget): [string, string, string] {
  const base = join(target.dir, target.name);
  return [`${base}-kernel`, `${base}-cmdline`, `${base}${IMAGE_SUFFIX[format]}`];
}

export async function writeRootfsFormat(format: RootfsFormat, entries: AsyncIterable<Entry>, target: OutputTarget, ctx: WriteContext & {mtime: number}): Promise<Artifact[]> {
  if (target.file) throw new TskitError(`${format} writes three files: give --name/--dir, not --output`);
  const [kernelPath, cmdlinePath, imagePath] = rootfsOutputPaths(format, target);
  let kernel: Written | undefined;
  let cmdline: Written | undefined;
  const rest = async function* (): AsyncGenerator<Entry> {
    for await (const entry of entries) {
      if (entry.path === 'boot/kernel') kernel = await writeBytes(entry.content ?? [], ctx.staged.stage(kernelPath), {signal: ctx.signal});
      else if (entry.path === 'boot/cmdline') cmdline = await writeBytes(entry.content ?? [], ctx.staged.stage(cmdlinePath), {signal: ctx.signal});
      else if (entry.path.startsWith('boot/')) await drain(entry); // as LinuxKit: boot/ itself stays, empty
      else yield entry;
    }
  };
  const options = {mtime: ctx.mtime, what: imagePath, progress: progressFor(ctx.emit, imagePath), ...(ctx.signal ? {signal: ctx.signal} : {})};
  const staged = ctx.staged.stage(imagePath);
  const writer = {'kernel+squashfs': writeSquashfs, 'kernel+erofs': writeErofs, 'kernel+iso': writeRootfsIso}[format];
  const image = await writer(rest(), staged, options);
  if (!kernel) throw new TskitError(`${format} output needs a kernel: the configuration has no kernel image, or it gave no kernel file`);
  cmdline ??= await writeBytes([], ctx.staged.stage(cmdlinePath));
  return [
    {path: kernelPath, format, ...kernel},
    {path: cmdlinePath, format, ...cmdline},
    {path: imagePath, format, ...image},
  ];
}

function progressFor(emit: Emit, path: string) {
  return (done: number) => emit({type: 'progress', task: `write ${path}`, done, unit: 'bytes'});
}
