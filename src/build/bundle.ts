// One container as LinuxKit lays it out for runc: containers/<section>/<NNN-name>/ with
// config.json, runtime.json and the image's root filesystem, either as rootfs/ (readonly:
// bind-mounted onto itself at boot) or as lower/ plus tmp/ and an empty rootfs/ (an
// overlay with a tmpfs upper layer is mounted there at boot).
import type {ImageEntry, Section, VolumeConfig} from '../config/types.ts';
import type {ImageSource, ResolvedImage} from '../oci/types.ts';
import type {Entry} from './entry.ts';
import {flattenLayers} from './flatten.ts';
import {imageLayerInputs} from './image-layers.ts';
import {bundleConfig, formatRuntimeJson, formatSpecJson, rootfsMounts} from './oci-spec.ts';

export interface BundleContext {
  source: ImageSource;
  idMap: Map<string, number>;
  volumes: VolumeConfig[];
  mtime: number;
  /** Image reference to the bundle path that already holds its root filesystem: each image is unpacked once. */
  unpacked: Map<string, string>;
}

export function bundlePath(section: Section, index: number, name: string): string {
  return `containers/${section}/${section === 'services' ? '' : `${String(index).padStart(3, '0')}-`}${name}`;
}

export async function* bundleEntries(section: Section, index: number, entry: ImageEntry, image: ResolvedImage, ctx: BundleContext): AsyncGenerator<Entry> {
  const prefix = bundlePath(section, index, entry.name);
  const {spec, runtime, readonly} = bundleConfig(entry, image.config.config, {idMap: ctx.idMap, volumes: ctx.volumes});
  const dir = (path: string): Entry => ({path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: ctx.mtime, size: 0});
  const json = (path: string, text: string): Entry => {
    const bytes = Buffer.from(text);
    return {path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: ctx.mtime, size: bytes.length, content: [bytes]};
  };

  const ownRoot = `${prefix}/${readonly ? 'rootfs' : 'lower'}`;
  const shared = ctx.unpacked.get(image.ref);
  const root = shared ?? ownRoot;
  if (shared === undefined) {
    ctx.unpacked.set(image.ref, ownRoot);
    yield dir(ownRoot);
    const layers = imageLayerInputs(ctx.source, image, {mtime: ctx.mtime, linuxkitRules: true});
    yield* underPrefix(flattenLayers(layers, {mtime: ctx.mtime}), `${ownRoot}/`);
  } else {
    yield dir(prefix);
  }

  yield json(`${prefix}/config.json`, formatSpecJson(spec));

  if (!readonly) {
    yield dir(`${prefix}/tmp`);
    yield dir(`${prefix}/rootfs`);
  } else if (shared !== undefined) {
    yield dir(`${prefix}/rootfs`);
  }
  const mounts = rootfsMounts(prefix, readonly, shared);
  yield json(`${prefix}/runtime.json`, formatRuntimeJson({...runtime, mounts: [...mounts, ...(runtime.mounts ?? [])]}));
}

/** Moves an image's entries under a directory of the final image; hard links move with them. */
export async function* underPrefix(entries: AsyncIterable<Entry>, prefix: string): AsyncGenerator<Entry> {
  for await (const entry of entries) {
    const out: Entry = {...entry, path: prefix + entry.path};
    if (entry.type === 'hardlink') out.linkname = prefix + (entry.linkname ?? '');
    yield out;
  }
}
