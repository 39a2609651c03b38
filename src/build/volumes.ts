// `volumes:` as LinuxKit lays them out: containers/volumes/<name>/ with lower/ (the image's
// files, or empty), tmp/ and merged/ for the overlay that init mounts at boot.
import {TskitError} from '../errors.ts';
import type {VolumeConfig} from '../config/types.ts';
import {parsePlatform} from '../oci/platform.ts';
import {MediaTypes, type Descriptor, type ImageSource, type LayoutSource, type Platform, type ResolvedImage} from '../oci/types.ts';
import {goMap, goMarshalIndent} from '../config/go-json.ts';
import {underPrefix} from './bundle.ts';
import type {Entry} from './entry.ts';
import {flattenLayers} from './flatten.ts';
import {imageLayerInputs} from './image-layers.ts';
import {normalizeImagePath} from './image-path.ts';
import {readTar} from './tar/reader.ts';

/** LinuxKit's init points /etc/resolv.conf at a writable place. */
export const RESOLV_CONF_SYMLINK = '/run/resolvconf/resolv.conf';

export function volumeBase(name: string): string {
  return `containers/volumes/${name}`;
}

export async function* volumeEntries(
  volume: VolumeConfig,
  index: number,
  image: ResolvedImage | undefined,
  ctx: {source: ImageSource; layouts?: LayoutSource | undefined; mtime: number},
): AsyncGenerator<Entry> {
  const base = volumeBase(volume.name);
  const dir = (path: string): Entry => ({path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: ctx.mtime, size: 0});
  yield dir(`${base}/lower`);
  if (image) {
    if (volume.format === 'oci') {
      yield* ociLayoutEntries(volume, index, image, ctx.layouts, `${base}/lower/`);
      yield dir(`${base}/tmp`);
      yield dir(`${base}/merged`);
      return;
    }
    const layers = imageLayerInputs(ctx.source, image, {mtime: ctx.mtime, linuxkitRules: true, resolvSymlink: RESOLV_CONF_SYMLINK});
    yield* underPrefix(flattenLayers(layers, {mtime: ctx.mtime}), `${base}/lower/`);
  }
  yield dir(`${base}/tmp`);
  yield dir(`${base}/merged`);
}

/** The platforms a `format: oci` volume carries: its `platforms:`, or every one its index lists. */
export async function volumePlatforms(volume: VolumeConfig, image: ResolvedImage, layouts: LayoutSource): Promise<Platform[]> {
  return volume.platforms?.length ? volume.platforms.map(parsePlatform) : layouts.platforms(image.ref);
}

/** LinuxKit's `format: oci`: the image as an OCI image layout (index, manifests, blobs) in lower/. */
async function* ociLayoutEntries(volume: VolumeConfig, index: number, image: ResolvedImage, layouts: LayoutSource | undefined, prefix: string): AsyncGenerator<Entry> {
  const what = `volumes[${index}] (${volume.name})`;
  if (!layouts) throw new TskitError(`${what}: format: oci needs images from tskit's cache`);
  const platforms = await volumePlatforms(volume, image, layouts);
  for await (const entry of readTar(layouts.layoutTar(image.ref, platforms), `OCI layout of ${image.ref}`)) {
    const path = normalizeImagePath(entry.path, what);
    if (path === '') continue;
    if (path === 'oci-layout' || path === 'index.json') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.content ?? []) chunks.push(Buffer.from(chunk));
      const bytes = path === 'oci-layout' ? LINUXKIT_OCI_LAYOUT : linuxkitLayoutIndex(Buffer.concat(chunks), image.ref, what);
      yield {...entry, path: prefix + path, size: bytes.length, content: [bytes]};
      continue;
    }
    yield {...entry, path: prefix + path};
  }
}

/** The oci-layout file exactly as LinuxKit writes it into a volume (a Go raw string, tabs and all). */
const LINUXKIT_OCI_LAYOUT = Buffer.from('{\n\t\t"imageLayoutVersion": "1.0.0"\n\t}');

/** index.json as LinuxKit writes it: the root as an index, named by the reference only, indented by three spaces. */
function linuxkitLayoutIndex(exported: Buffer, ref: string, what: string): Buffer {
  const root = (JSON.parse(exported.toString('utf8')) as {manifests?: Descriptor[]}).manifests?.[0];
  if (!root) throw new TskitError(`${what}: the exported layout of ${ref} has no root`);
  const index = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [{mediaType: MediaTypes.ociIndex, size: root.size, digest: root.digest, annotations: goMap({'org.opencontainers.image.ref.name': ref})}],
  };
  return Buffer.from(goMarshalIndent(index, '   '));
}
