// Turns a resolved image into flatten inputs: each layer blob decompressed and read as tar,
// with LinuxKit's per-image rules (files it drops, files it always writes) applied, so the
// flattened image is what `linuxkit build` puts into the root filesystem.
import {TskitError} from '../errors.ts';
import {openLayer} from '../oci/layer.ts';
import {decodeLayerIndex, encodeLayerIndex, LAYER_INDEX_KIND, layerHeader} from './layer-index.ts';
import type {Descriptor, ImageSource, ResolvedImage} from '../oci/types.ts';
import type {Entry} from './entry.ts';
import type {LayerInput} from './flatten.ts';
import {normalizeImagePath} from './image-path.ts';
import {readTar} from './tar/reader.ts';

/** Names LinuxKit drops from every image: artefacts of `docker export` and host-owned files. */
const EXCLUDED = new Set(['.dockerenv', 'Dockerfile', 'dev/console', 'dev/pts', 'dev/shm', 'etc/hostname']);

const HOSTS = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`;
const NO_RESOLV_CONF = '\n# no resolv.conf configured\n';

export interface ImageLayerOptions {
  /** For init and volume images LinuxKit makes /etc/resolv.conf a symlink to this path. */
  resolvSymlink?: string;
  /** Timestamp of the entries LinuxKit writes itself. */
  mtime: number;
  /** Apply LinuxKit's rules (everything but the kernel image, whose files are picked by name). */
  linuxkitRules: boolean;
  /** Where the image is used in the YAML (`init[0]`, `onboot[2]`), recorded in PAX records as LinuxKit does. */
  location?: string;
  /** Receives the image's Alpine package database (lib/apk/db/installed), the topmost layer's. */
  onApkDatabase?(content: Buffer): void;
}

/** Alpine's package database: LinuxKit writes the union of the init images' databases. */
export const APK_DATABASE = 'lib/apk/db/installed';

export function imageLayerInputs(source_: ImageSource, image: ResolvedImage, options: ImageLayerOptions): LayerInput[] {
  const count = image.layers.length;
  // LinuxKit only writes /etc/mtab when the image has none; known once the layers are indexed.
  let hasMtab = false;
  let indexed = false;
  const inputs: LayerInput[] = image.layers.map((layer, i) => {
    const what = `layer ${i + 1}/${count} (${layer.digest}) of ${image.ref}`;
    let opens = 0;
    /** The first pass's names in order: the second pass must meet the same entries. */
    let planned: string[] | undefined;
    return {
      what,
      async *open() {
        const pass = ++opens;
        const source = pass === 1 ? await firstPassEntries(source_, image, layer, what, (names) => (planned = names)) : checkedEntries(source_, image, layer, what, planned);
        for await (const entry of source) {
          if (options.linuxkitRules) {
            const path = normalizeImagePath(entry.path, what);
            if (EXCLUDED.has(path)) continue;
            if (!indexed) hasMtab = mtabAfter(hasMtab, path);
            if (path === 'etc/mtab') entry.mtime = options.mtime;
            if (path === APK_DATABASE && entry.type === 'file' && options.onApkDatabase && pass === 2) {
              // a small text file: read it while it streams by and hand it on
              const chunks: Buffer[] = [];
              for await (const chunk of entry.content ?? []) chunks.push(Buffer.from(chunk));
              const content = Buffer.concat(chunks);
              options.onApkDatabase(content);
              entry.content = [content];
            }
          }
          yield entry;
        }
        if (i === count - 1) indexed = true;
      },
    };
  });
  if (options.linuxkitRules) {
    inputs.push({
      what: `files tskit adds to ${image.ref}`,
      open: () => linuxkitAdditions(options, () => hasMtab),
    });
  }
  if (options.location !== undefined) {
    const pax = {'LINUXKIT.source': image.ref, 'LINUXKIT.location': options.location};
    for (const input of inputs) input.pax = pax;
  }
  return inputs;
}

/** Tracks whether etc/mtab survives the layers seen so far (whiteouts included). */
function mtabAfter(present: boolean, path: string): boolean {
  if (path === 'etc/mtab') return true;
  if (path === 'etc/.wh.mtab' || path === '.wh.etc' || path === 'etc/.wh..wh..opq') return false;
  return present;
}

/**
 * What LinuxKit writes after every image: the mount points and /etc files a container
 * needs. Its directory entries always land (LinuxKit matches them by a name with a trailing
 * slash that cleaned names never have), so they override the image's own attributes.
 */
async function* linuxkitAdditions(options: ImageLayerOptions, hasMtab: () => boolean): AsyncGenerator<Entry> {
  const mtime = options.mtime;
  const dir = (path: string): Entry => ({path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0});
  const text = (path: string, body: string): Entry => {
    const bytes = Buffer.from(body);
    return {path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: bytes.length, content: [bytes]};
  };
  yield dir('dev');
  yield dir('dev/pts');
  yield dir('dev/shm');
  yield dir('etc');
  yield text('etc/hosts', HOSTS);
  if (!hasMtab()) yield {path: 'etc/mtab', type: 'symlink', linkname: '/proc/mounts', mode: 0o755, uid: 0, gid: 0, mtime, size: 0};
  if (options.resolvSymlink) {
    yield {path: 'etc/resolv.conf', type: 'symlink', linkname: options.resolvSymlink, mode: 0o644, uid: 0, gid: 0, mtime, size: 0};
  } else {
    yield text('etc/resolv.conf', NO_RESOLV_CONF);
  }
  yield dir('proc');
  yield dir('sys');
}

/**
 * The first pass needs headers only: from the index saved by an earlier build when there is
 * one, else from the layer itself (saving the index for next time).
 */
async function firstPassEntries(source: ImageSource, image: ResolvedImage, layer: Descriptor, what: string, plan: (names: string[]) => void): Promise<AsyncIterable<Entry> | Iterable<Entry>> {
  const saved = await source.readDerived?.(LAYER_INDEX_KIND, layer.digest);
  const headers = saved ? decodeLayerIndex(saved) : undefined;
  if (headers) {
    plan(headers.map((h) => h.path));
    return headers;
  }
  return (async function* () {
    const seen: Entry[] = [];
    for await (const entry of readTar(await openLayer(source, image, layer), what)) {
      seen.push(layerHeader(entry));
      yield entry;
    }
    plan(seen.map((h) => h.path));
    await source.writeDerived?.(LAYER_INDEX_KIND, layer.digest, encodeLayerIndex(seen));
  })();
}

/** The second pass reads the layer and stops at the first entry the first pass did not plan for. */
async function* checkedEntries(source: ImageSource, image: ResolvedImage, layer: Descriptor, what: string, planned: string[] | undefined): AsyncGenerator<Entry> {
  let ordinal = 0;
  for await (const entry of readTar(await openLayer(source, image, layer), what)) {
    if (planned && planned[ordinal] !== entry.path) {
      throw new TskitError(`${what}: entry ${ordinal + 1} is ${JSON.stringify(entry.path)}, but the saved index of this layer says ${JSON.stringify(planned[ordinal] ?? '(end)')}; run \`tskit cache verify --repair\` or \`tskit cache clean\``);
    }
    ordinal++;
    yield entry;
  }
  if (planned && ordinal !== planned.length) {
    throw new TskitError(`${what}: the layer ended after ${ordinal} entries, but its saved index lists ${planned.length}; run \`tskit cache clean\``);
  }
}
