// Assembly: the whole root filesystem of a LinuxKit-style image as one ordered entry
// stream, in LinuxKit's order: kernel, init images, volumes, onboot, onshutdown and service
// bundles, then `files:`. Every output format consumes this one stream.
import {containerIdMap} from '../config/ids.ts';
import type {Emit} from '../events.ts';
import type {ImageEntry, MobyConfig, Section} from '../config/types.ts';
import {parsePlatform} from '../oci/platform.ts';
import type {ImageSource, LayoutSource, Platform, ResolvedImage} from '../oci/types.ts';
import {bundleEntries} from './bundle.ts';
import type {Entry} from './entry.ts';
import {fileEntries} from './files.ts';
import {flattenLayers, type LayerInput} from './flatten.ts';
import {APK_DATABASE, imageLayerInputs} from './image-layers.ts';
import {kernelEntries} from './kernel.ts';
import {withParents} from './top-level.ts';
import {RESOLV_CONF_SYMLINK, volumeEntries, volumePlatforms} from './volumes.ts';

export const SECTIONS: Section[] = ['onboot', 'onshutdown', 'services'];

export interface AssembleOptions {
  source: ImageSource;
  /** For `volumes:` with `format: oci` (the image cache). */
  layouts?: LayoutSource;
  platform: Platform;
  /** Timestamp of every entry tskit generates (SOURCE_DATE_EPOCH or LinuxKit's epoch). */
  mtime: number;
  /** Directory `files: source:` paths are relative to. */
  cwd: string;
  emit: Emit;
  /** The merged configuration rendered for `files: metadata: json|yaml`. */
  metadata(format: string): string;
  /** Names a YAML location in errors: ['files', 2] -> "hello.yml:14:5". */
  where?(path: Array<string | number>): string;
  /** How many images to resolve at once. */
  concurrency?: number;
}

export interface ResolvedImages {
  kernel?: ResolvedImage;
  init: ResolvedImage[];
  onboot: ResolvedImage[];
  onshutdown: ResolvedImage[];
  services: ResolvedImage[];
  volumes: Array<ResolvedImage | undefined>;
}

/** Resolves every image the configuration names (pulling what the cache lacks), a few at a time. */
export async function resolveImages(config: MobyConfig, options: Pick<AssembleOptions, 'source' | 'layouts' | 'platform' | 'concurrency'>): Promise<ResolvedImages> {
  const jobs: Array<() => Promise<void>> = [];
  const out: ResolvedImages = {init: [], onboot: [], onshutdown: [], services: [], volumes: []};
  const resolve = (ref: string, store: (image: ResolvedImage) => void) => jobs.push(async () => store(await options.source.resolve(ref, options.platform)));
  if (config.kernel?.image) resolve(config.kernel.image, (image) => (out.kernel = image));
  (config.init ?? []).forEach((ref, i) => resolve(ref, (image) => (out.init[i] = image)));
  for (const section of SECTIONS) {
    (config[section] ?? []).forEach((entry, i) => resolve(entry.image, (image) => (out[section][i] = image)));
  }
  (config.volumes ?? []).forEach((volume, i) => {
    out.volumes[i] = undefined;
    if (!volume.image) return;
    if (volume.format === 'oci' && options.layouts) {
      // an OCI-layout volume carries several platforms' images: all must be in the cache
      const layouts = options.layouts;
      const ref = volume.image;
      const primary = volume.platforms?.length ? parsePlatform(volume.platforms[0]!) : options.platform;
      jobs.push(async () => {
        const image = await options.source.resolve(ref, primary);
        out.volumes[i] = image;
        for (const platform of await volumePlatforms(volume, image, layouts)) await options.source.resolve(ref, platform);
      });
      return;
    }
    resolve(volume.image, (image) => (out.volumes[i] = image));
  });
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({length: Math.min(options.concurrency ?? 4, jobs.length)}, worker));
  return out;
}

export function assemble(config: MobyConfig, images: ResolvedImages, options: AssembleOptions): AsyncGenerator<Entry> {
  return withParents(parts(config, images, options), options.mtime);
}

async function* parts(config: MobyConfig, images: ResolvedImages, options: AssembleOptions): AsyncGenerator<Entry> {
  const {source, mtime} = options;
  const where = options.where ?? ((path) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, ''));
  const idMap = containerIdMap(config);

  if (config.kernel && images.kernel) {
    const pax = {'LINUXKIT.source': images.kernel.ref, 'LINUXKIT.location': 'kernel'};
    for await (const entry of kernelEntries(source, images.kernel, config.kernel, mtime)) yield {...entry, pax};
  }

  // Init images form the root filesystem together, later ones over earlier ones.
  if (images.init.length > 0) {
    const apkDatabases: Array<Buffer | undefined> = images.init.map(() => undefined);
    const layers: LayerInput[] = images.init.flatMap((image, i) =>
      imageLayerInputs(source, image, {
        mtime,
        linuxkitRules: true,
        resolvSymlink: RESOLV_CONF_SYMLINK,
        location: `init[${i}]`,
        onApkDatabase: (content) => (apkDatabases[i] = content),
      }),
    );
    yield* flattenLayers(layers, {mtime});
    // As LinuxKit: with several init images carrying Alpine package databases, the last
    // word on lib/apk/db/installed is their union, so `apk` sees every package installed.
    const databases = apkDatabases.filter((db): db is Buffer => db !== undefined);
    if (databases.length > 1) {
      const union = Buffer.concat(databases.flatMap((db) => [db, Buffer.from('\n\n')]));
      yield {path: APK_DATABASE, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: union.length, content: [union], pax: {'LINUXKIT.source': 'LINUXKIT.apkinit', 'LINUXKIT.location': 'init'}};
    }
  }

  for (const [i, volume] of (config.volumes ?? []).entries()) {
    const pax = {'LINUXKIT.source': images.volumes[i]?.ref ?? 'empty', 'LINUXKIT.location': `volume[${i}]`};
    for await (const entry of volumeEntries(volume, i, images.volumes[i], {source, layouts: options.layouts, mtime})) yield {...entry, pax: entry.pax ?? pax};
  }

  const unpacked = new Map<string, string>();
  for (const section of SECTIONS) {
    const entries: ImageEntry[] = config[section] ?? [];
    for (const [i, entry] of entries.entries()) {
      const image = images[section][i]!;
      const pax = {'LINUXKIT.source': image.ref, 'LINUXKIT.location': `${section}[${i}]`};
      for await (const out of bundleEntries(section, i, entry, image, {source, idMap, volumes: config.volumes ?? [], mtime, unpacked})) {
        yield {...out, pax};
      }
    }
  }

  const files = config.files ?? [];
  for await (const entry of fileEntries(files, {idMap, mtime, cwd: options.cwd, metadata: options.metadata, where: (i) => where(['files', i])})) {
    yield entry;
  }
}
