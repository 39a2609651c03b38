// The kernel image's contribution, as LinuxKit lays it out: boot/kernel, boot/cmdline and
// boot/ucode.cpio from named files in the image, and the contents of its kernel.tar
// (modules and firmware) at the root. The kernel.tar is read straight out of the layer
// stream, never buffered.
import {printable, TskitError} from '../errors.ts';
import type {KernelConfig} from '../config/types.ts';
import type {ImageSource, ResolvedImage} from '../oci/types.ts';
import {drain, type Entry} from './entry.ts';
import {flattenLayers} from './flatten.ts';
import {imageLayerInputs} from './image-layers.ts';
import {normalizeImagePath} from './image-path.ts';
import {PathTree} from './path-tree.ts';
import {readTar} from './tar/reader.ts';
import {decompressedKernel} from './kernel-decompress.ts';

export interface KernelParts {
  binary: string;
  tar: string | null;
  ucode: string | null;
}

/** Which files of the kernel image to take, with LinuxKit's defaults. */
export function kernelParts(kernel: KernelConfig): KernelParts {
  const tar = kernel.tar === undefined ? 'kernel.tar' : kernel.tar === 'none' || kernel.tar === '' ? null : kernel.tar;
  return {
    binary: normalizeImagePath(kernel.binary || 'kernel', 'kernel.binary'),
    tar: tar === null ? null : normalizeImagePath(tar, 'kernel.tar'),
    ucode: kernel.ucode ? normalizeImagePath(kernel.ucode, 'kernel.ucode') : null,
  };
}

export async function* kernelEntries(
  source: ImageSource,
  image: ResolvedImage,
  kernel: KernelConfig,
  mtime: number,
  options: {decompress?: boolean} = {},
): AsyncGenerator<Entry> {
  const parts = kernelParts(kernel);
  const flattened = flattenLayers(imageLayerInputs(source, image, {mtime, linuxkitRules: false}), {mtime});
  let foundKernel = false;
  let foundTar = false;
  let bootWritten = false;
  const boot = (): Entry[] => {
    if (bootWritten) return [];
    bootWritten = true;
    return [{path: 'boot', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0}];
  };

  for await (const entry of flattened) {
    if (entry.path === parts.binary && entry.type === 'file') {
      if (foundKernel) throw new TskitError(`${image.ref}: more than one kernel named ${parts.binary}`);
      foundKernel = true;
      yield* boot();
      const cmdline = Buffer.from(kernel.cmdline ?? '');
      yield {path: 'boot/cmdline', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: cmdline.length, content: [cmdline]};
      const binary = headerOnly(entry, 'boot/kernel', mtime);
      yield options.decompress ? await decompressedKernel(binary, `${parts.binary} of ${image.ref}`) : binary;
    } else if (parts.tar !== null && entry.path === parts.tar && entry.type === 'file') {
      foundTar = true;
      yield* kernelTarEntries(entry, `${parts.tar} of ${image.ref}`);
    } else if (parts.ucode !== null && entry.path === parts.ucode && entry.type === 'file') {
      yield* boot();
      yield headerOnly(entry, 'boot/ucode.cpio', mtime);
    } else {
      await drain(entry);
    }
  }
  if (!foundKernel) throw new TskitError(`${image.ref}: no kernel file named ${JSON.stringify(parts.binary)} in the kernel image (set kernel.binary if it has another name)`);
  if (parts.tar !== null && !foundTar) {
    throw new TskitError(`${image.ref}: no ${JSON.stringify(parts.tar)} in the kernel image (set kernel.tar: none if it has no modules tarball)`);
  }
}

/**
 * Entries of the kernel's modules tarball. It is a single tar, read once, so entries that
 * would be written through one of its own symlinks are refused rather than resolved.
 */
async function* kernelTarEntries(entry: Entry, what: string): AsyncGenerator<Entry> {
  const tree = new PathTree();
  for await (const inner of readTar(entry.content ?? [], what)) {
    const path = normalizeImagePath(inner.path, what);
    if (path === '') continue;
    const {symlink} = tree.ensureParents(path);
    if (symlink) throw new TskitError(`${what}: ${printable(path)} would be written through the symlink ${printable(symlink.path)}`);
    tree.set(path, inner.type === 'symlink' ? 'symlink' : inner.type === 'dir' ? 'dir' : 'other', inner.linkname);
    const out: Entry = {...inner, path};
    if (inner.type === 'hardlink') out.linkname = normalizeImagePath(inner.linkname ?? '', what);
    yield out;
  }
}

/** LinuxKit writes these with the file's mode and size only: owner root, its fixed time. */
function headerOnly(entry: Entry, path: string, mtime: number): Entry {
  const out: Entry = {path, type: 'file', mode: entry.mode, uid: 0, gid: 0, mtime, size: entry.size};
  if (entry.content) out.content = entry.content;
  return out;
}
