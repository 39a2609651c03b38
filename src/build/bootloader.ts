// The bootloader image: an OCI image like every other input (resolved through the cache,
// digest-checked), whose few small files the bootable layouts copy. Which image: the
// --bootloader-image flag, else the YAML's `bootloader: image:` (a tskit extension), else
// the default below.
import {TskitError} from '../errors.ts';
import {BOOTLOADER_PATHS, type BootloaderFiles} from '../formats/bootloader.ts';
import type {ImageSource, ResolvedImage} from '../oci/types.ts';
import {drain} from './entry.ts';
import {flattenLayers} from './flatten.ts';
import {imageLayerInputs} from './image-layers.ts';

/** The image tskit's fixtures build from Debian's systemd-boot-efi, syslinux and isolinux (docs/formats.md). */
export const DEFAULT_BOOTLOADER_IMAGE = 'localhost:5000/tskit/bootloader:1';

/** A boot loader binary larger than this is not one. */
const MAX_FILE = 16 * 1024 * 1024;

/** Reads the files the layouts use out of the bootloader image (they are small: kilobytes). */
export async function loadBootloaderFiles(source: ImageSource, image: ResolvedImage, mtime: number): Promise<BootloaderFiles> {
  const wanted = new Map(Object.entries(BOOTLOADER_PATHS).map(([key, path]) => [path, key as keyof BootloaderFiles]));
  const files: BootloaderFiles = {};
  const layers = imageLayerInputs(source, image, {mtime, linuxkitRules: false, location: 'bootloader'});
  for await (const entry of flattenLayers(layers, {mtime})) {
    const key = wanted.get(entry.path);
    if (!key || entry.type !== 'file') {
      await drain(entry);
      continue;
    }
    if (entry.size > MAX_FILE) throw new TskitError(`bootloader image ${image.ref}: /${entry.path} is ${entry.size} bytes, too large for a boot loader file`);
    const chunks: Buffer[] = [];
    for await (const chunk of entry.content ?? []) chunks.push(Buffer.from(chunk));
    files[key] = Buffer.concat(chunks);
  }
  return files;
}
