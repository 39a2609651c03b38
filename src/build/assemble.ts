// Assembly: the whole root filesystem of a LinuxKit-style image as one ordered entry
// stream, in LinuxKit's order: kernel, init images, volumes, onboot, onshutdown and service
// bundles, then `files:`. Every output format consumes this one stream.
import {containerIdMap} from '../config/ids.ts';
import type {Emit} from '../events.ts';
import type {ImageEntry, MobyConfig, Section} from '../config/types.ts';
import {parsePlatform} from '../oci/platform.ts';
import type {ImageSource, LayoutSource, Platform, ResolvedImage} from '../oci/types.ts';
import {bundleEntries, bundlePath} from './bundle.ts';
import type {Entry} from './entry.ts';
import {fileEntries} from './files.ts';
import {flattenLayers, type LayerInput} from './flatten.ts';
import {APK_DATABASE, imageLayerInputs} from './image-layers.ts';
import {kernelEntries} from './kernel.ts';
import {withParents} from './top-level.ts';
import {RESOLV_CONF_SYMLINK, volumeEntries, volumePlatforms} from './volumes.ts';
import type {Reuse} from './input-tar.ts';

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
  /** --decompress-kernel: boot/kernel decompressed. */
  decompressKernel?: boolean;
  /** --input-tar: the parts a previous build's tar supplies (input-tar.ts). */
  reuse?: Reuse;
}

/**
 * Every image the configuration names, as promises: pulls run (a few at a time, in the
 * order assembly needs them) while assembly already works on the images that have arrived.
 */
export interface ResolvedImages {
  kernel?: Promise<ResolvedImage>;
  init: Array<Promise<ResolvedImage>>;
  onboot: Array<Promise<ResolvedImage>>;
  onshutdown: Array<Promise<ResolvedImage>>;
  services: Array<Promise<ResolvedImage>>;
  volumes: Array<Promise<ResolvedImage> | undefined>;
}

/** Starts resolving every image (pulling what the cache lacks); returns at once. */
export function resolveImages(config: MobyConfig, options: Pick<AssembleOptions, 'source' | 'layouts' | 'platform' | 'concurrency'> & {skip?: ReadonlySet<string>}): ResolvedImages {
  const skip = options.skip ?? new Set<string>();
  const queue: Array<() => void> = [];
  let running = 0;
  const limit = options.concurrency ?? 4;
  const pump = () => {
    while (running < limit && queue.length > 0) {
      running++;
      queue.shift()!();
    }
  };
  const schedule = (job: () => Promise<ResolvedImage>): Promise<ResolvedImage> => {
    const promise = new Promise<ResolvedImage>((resolve, reject) => {
      queue.push(() => {
        job()
          .then(resolve, reject)
          .finally(() => {
            running--;
            pump();
          });
      });
    });
    promise.catch(() => {}); // reported where assembly awaits it, not as an unhandled rejection
    pump();
    return promise;
  };
  const resolve = (ref: string) => schedule(() => options.source.resolve(ref, options.platform));

  const out: ResolvedImages = {init: [], onboot: [], onshutdown: [], services: [], volumes: []};
  if (config.kernel?.image && !skip.has('kernel')) out.kernel = resolve(config.kernel.image);
  if (!skip.has('init')) out.init = (config.init ?? []).map(resolve);
  out.volumes = (config.volumes ?? []).map((volume, i) => {
    if (!volume.image || skip.has(`volume[${i}]`)) return undefined;
    if (volume.format === 'oci' && options.layouts) {
      // an OCI-layout volume carries several platforms' images: all must be in the cache
      const layouts = options.layouts;
      const ref = volume.image;
      const primary = volume.platforms?.length ? parsePlatform(volume.platforms[0]!) : options.platform;
      return schedule(async () => {
        const image = await options.source.resolve(ref, primary);
        for (const platform of await volumePlatforms(volume, image, layouts)) await options.source.resolve(ref, platform);
        return image;
      });
    }
    return resolve(volume.image);
  });
  // a reused container's slot stays empty (never awaited: assembly takes it from the tar)
  for (const section of SECTIONS) out[section] = (config[section] ?? []).map((entry, i) => (skip.has(`${section}[${i}]`) ? undefined! : resolve(entry.image)));
  return out;
}

/** Waits for every image (for a caller that wants all pulls done before it writes anything). */
export async function allResolved(images: ResolvedImages): Promise<void> {
  await Promise.all([images.kernel, ...images.init, ...images.volumes, ...SECTIONS.flatMap((s) => images[s])]);
}

export function assemble(config: MobyConfig, images: ResolvedImages, options: AssembleOptions): AsyncGenerator<Entry> {
  return withParents(parts(config, images, options), options.mtime);
}

async function* parts(config: MobyConfig, images: ResolvedImages, options: AssembleOptions): AsyncGenerator<Entry> {
  const {source, mtime} = options;
  const where = options.where ?? ((path) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, ''));
  const idMap = containerIdMap(config);

  const reuse = options.reuse;
  if (config.kernel && reuse?.parts.has('kernel')) {
    yield* reuse.entries('kernel');
  } else if (config.kernel && images.kernel) {
    const kernel = await images.kernel;
    const pax = {'LINUXKIT.source': kernel.ref, 'LINUXKIT.location': 'kernel'};
    for await (const entry of kernelEntries(source, kernel, config.kernel, mtime, {decompress: options.decompressKernel ?? false})) yield {...entry, pax};
  }

  // Init images form the root filesystem together, later ones over earlier ones.
  if (reuse?.parts.has('init')) {
    yield* reuse.entries('init');
  } else if (images.init.length > 0) {
    const initImages = await Promise.all(images.init);
    const apkDatabases: Array<Buffer | undefined> = initImages.map(() => undefined);
    const layers: LayerInput[] = initImages.flatMap((image, i) =>
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
    if (reuse?.parts.has(`volume[${i}]`)) {
      yield* reuse.entries(`volume[${i}]`);
      continue;
    }
    const image = await images.volumes[i];
    const pax = {'LINUXKIT.source': image?.ref ?? 'empty', 'LINUXKIT.location': `volume[${i}]`};
    for await (const entry of volumeEntries(volume, i, image, {source, layouts: options.layouts, mtime})) yield {...entry, pax: entry.pax ?? pax};
  }

  const unpacked = new Map<string, string>();
  for (const section of SECTIONS) {
    const entries: ImageEntry[] = config[section] ?? [];
    for (const [i, entry] of entries.entries()) {
      if (reuse?.parts.has(`${section}[${i}]`)) {
        yield* reusedBundle(reuse, section, i, entry.name, unpacked);
        continue;
      }
      const image = await images[section][i]!;
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

/**
 * A container taken from --input-tar. When it holds its image's root filesystem, later
 * containers of the same image share it, as they would in a fresh build.
 */
async function* reusedBundle(reuse: Reuse, section: Section, index: number, name: string, unpacked: Map<string, string>): AsyncGenerator<Entry> {
  const prefix = bundlePath(section, index, name);
  for await (const entry of reuse.entries(`${section}[${index}]`)) {
    const source = entry.pax?.['LINUXKIT.source'];
    for (const root of ['rootfs', 'lower']) {
      if (source && !unpacked.has(source) && entry.path.startsWith(`${prefix}/${root}/`)) unpacked.set(source, `${prefix}/${root}`);
    }
    yield entry;
  }
}
