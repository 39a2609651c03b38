// `volumes:` as LinuxKit lays them out: containers/volumes/<name>/ with lower/ (the image's
// files, or empty), tmp/ and merged/ for the overlay that init mounts at boot.
import {TskitError} from '../errors.ts';
import type {VolumeConfig} from '../config/types.ts';
import type {ImageSource, ResolvedImage} from '../oci/types.ts';
import {underPrefix} from './bundle.ts';
import type {Entry} from './entry.ts';
import {flattenLayers} from './flatten.ts';
import {imageLayerInputs} from './image-layers.ts';

/** LinuxKit's init points /etc/resolv.conf at a writable place. */
export const RESOLV_CONF_SYMLINK = '/run/resolvconf/resolv.conf';

export function volumeBase(name: string): string {
  return `containers/volumes/${name}`;
}

export async function* volumeEntries(
  volume: VolumeConfig,
  index: number,
  image: ResolvedImage | undefined,
  ctx: {source: ImageSource; mtime: number},
): AsyncGenerator<Entry> {
  const base = volumeBase(volume.name);
  const dir = (path: string): Entry => ({path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: ctx.mtime, size: 0});
  yield dir(`${base}/lower`);
  if (image) {
    if (volume.format === 'oci') {
      throw new TskitError(`volumes[${index}] (${volume.name}): format: oci is not supported yet; use format: filesystem`);
    }
    const layers = imageLayerInputs(ctx.source, image, {mtime: ctx.mtime, linuxkitRules: true, resolvSymlink: RESOLV_CONF_SYMLINK});
    yield* underPrefix(flattenLayers(layers, {mtime: ctx.mtime}), `${base}/lower/`);
  }
  yield dir(`${base}/tmp`);
  yield dir(`${base}/merged`);
}
