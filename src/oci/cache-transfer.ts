// Moving images in and out of the cache as OCI image layouts: `cache export` writes one
// image as an OCI layout tar (what `skopeo copy oci-archive:FILE.tar ...` and LinuxKit's
// `cache import` load), `cache import` reads an OCI layout tar or directory, verifying every
// blob against its digest before it enters the cache.
import {randomBytes} from 'node:crypto';
import {createReadStream, createWriteStream} from 'node:fs';
import {open, readFile, rename, stat, unlink} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {pipeline, Readable, type Writable} from 'node:stream';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import {CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION, type ImageCache} from './cache.ts';
import type {Lease} from './cache-lock.ts';
import {createDigester, parseDigest, VerifyingStream} from './digest.ts';
import {isNoSpace, noSpaceError, writeFullyAt} from './file-writes.ts';
import {decompress} from './layer.ts';
import {LayoutTarWriter, readTarMembers} from './layout-tar.ts';
import {formatPlatform, selectManifest} from './platform.ts';
import {formatReference, parseReference} from './reference.ts';
import {MediaTypes, type Descriptor, type ImageIndex, type Platform} from './types.ts';
import {parseJsonBlob} from './json-blob.ts';

const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

function isIndex(descriptor: Descriptor, json?: {manifests?: unknown}): boolean {
  if (INDEX_TYPES.has(descriptor.mediaType)) return true;
  return descriptor.mediaType === undefined && Array.isArray(json?.manifests);
}

export interface ExportOptions {
  /** For an index: export only this platform's image (default), as LinuxKit does. */
  platform?: Platform;
  /** Export the whole index; every manifest it lists must be in the cache. */
  all?: boolean;
  /**
   * Keep the index as the root but export only these platforms' images (LinuxKit's `format: oci`
   * volumes with `platforms:`); each must be in the cache.
   */
  platforms?: Platform[];
  /** The name written into the archive (default: the reference). */
  name?: string;
  emit?: Emit;
}

export interface ExportResult {
  ref: string;
  name: string;
  root: Descriptor;
  blobs: number;
  bytes: number;
}

interface Planned {
  root: Descriptor;
  blobs: Descriptor[];
}

/** Works out the root descriptor and the blobs an export of `name` needs; throws when any is missing. */
async function planExport(cache: ImageCache, name: string, options: ExportOptions, lease: Lease): Promise<Planned> {
  const ref = parseReference(name);
  const recorded = await cache.findRef(name);
  let entry: Descriptor | undefined = recorded;
  if (!entry && ref.digest) {
    const size = await cache.blobSize(ref.digest);
    if (size !== undefined) entry = {mediaType: '', digest: ref.digest, size};
  }
  if (!entry) throw new TskitError(`${name} is not in the cache ${cache.dir}: pull it first (\`tskit cache pull ${name}\`)`);
  await cache.extendLease(lease, [entry.digest]);
  const rootBytes = await cache.readBlobBytes(entry.digest);
  if (!rootBytes) throw new TskitError(`the cache has ${name} recorded, but its blob ${entry.digest} is missing or damaged; pull it again`);
  const rootJson = parseJsonBlob<{mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]}>(rootBytes, `${entry.digest} of ${name}`);
  const rootMediaType = rootJson.mediaType || entry.mediaType || (Array.isArray(rootJson.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  const root: Descriptor = {mediaType: rootMediaType, digest: entry.digest, size: rootBytes.length};

  const blobs: Descriptor[] = [];
  const manifestBlobs = async (manifest: Descriptor, what: string) => {
    await cache.extendLease(lease, [manifest.digest]);
    const bytes = await cache.readBlobBytes(manifest.digest, manifest.size);
    if (!bytes) throw new TskitError(`${what} (manifest ${manifest.digest}) is not in the cache; pull it first`);
    const json = parseJsonBlob<{config: Descriptor; layers: Descriptor[]}>(bytes, `manifest ${manifest.digest} of ${what}`);
    if (!json.config || !Array.isArray(json.layers)) throw new TskitError(`${manifest.digest} of ${what} is not an image manifest`);
    const parts = [json.config, ...json.layers];
    await cache.extendLease(lease, parts.map((p) => p.digest));
    for (const part of parts) {
      if (!(await cache.hasBlob(part))) throw new TskitError(`${what}: blob ${part.digest} is not in the cache; pull the image again`);
      if (!blobs.some((b) => b.digest === part.digest)) blobs.push(part);
    }
    blobs.push({mediaType: manifest.mediaType, digest: manifest.digest, size: bytes.length});
  };

  if (isIndex(root, rootJson)) {
    const index = rootJson as ImageIndex;
    if (options.all) {
      const missing: string[] = [];
      for (const child of index.manifests) {
        if (!(await cache.hasBlob(child))) missing.push(child.platform ? formatPlatform(child.platform) : child.digest);
      }
      if (missing.length) {
        throw new TskitError(`cannot export all of ${name}: the cache lacks ${missing.join(', ')}; pull those platforms first, or export one platform`);
      }
      for (const child of index.manifests) await manifestBlobs(child, `${name} ${child.platform ? formatPlatform(child.platform) : child.digest}`);
      blobs.push(root);
      return {root, blobs};
    }
    if (options.platforms) {
      // LinuxKit's rule: same os and architecture, and the variant when one is asked for
      const wanted = index.manifests.filter((child) =>
        options.platforms!.some((p) => child.platform && p.os === child.platform.os && p.architecture === child.platform.architecture && (!p.variant || p.variant === child.platform.variant)),
      );
      if (wanted.length === 0) throw new TskitError(`${name} has none of the platforms ${options.platforms.map(formatPlatform).join(', ')}`);
      for (const child of wanted) await manifestBlobs(child, `${name} ${formatPlatform(child.platform!)}`);
      blobs.push(root);
      return {root, blobs};
    }
    const platform = options.platform;
    if (!platform) throw new TskitError(`${name} is a multi-platform index: name a platform to export, or export all of it`);
    const chosen = selectManifest(index, platform, name);
    await manifestBlobs(chosen, `${name} for ${formatPlatform(platform)}`);
    return {root: {mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.size, ...(chosen.platform ? {platform: chosen.platform} : {})}, blobs};
  }
  await manifestBlobs(root, name);
  return {root, blobs};
}

/** Writes one cached image as an OCI layout tar to `out`. */
export async function exportImage(cache: ImageCache, ref: string, out: Writable, options: ExportOptions = {}): Promise<ExportResult> {
  const name = formatReference(parseReference(ref));
  const exportName = options.name ? formatReference(parseReference(options.name)) : name;
  const emit = options.emit ?? ignoreEvents;
  const lease = await cache.acquireLease();
  try {
    const {root, blobs} = await planExport(cache, name, options, lease);
    const writer = new LayoutTarWriter(out);
    await writer.file('oci-layout', Buffer.from(JSON.stringify({imageLayoutVersion: '1.0.0'})));
    await writer.directory('blobs');
    const algorithms = [...new Set(blobs.map((b) => parseDigest(b.digest).algorithm))];
    for (const algorithm of algorithms) await writer.directory(`blobs/${algorithm}`);
    const total = blobs.reduce((sum, b) => sum + b.size, 0);
    let done = 0;
    for (const blob of blobs) {
      const {algorithm, hex} = parseDigest(blob.digest);
      const verifier = new VerifyingStream(blob, {ref: name, source: `the cache ${cache.dir}`});
      pipeline(createReadStream(cache.blobPath(blob.digest)), verifier, () => {});
      await writer.streamFile(`blobs/${algorithm}/${hex}`, blob.size, verifier);
      done += blob.size;
      emit({type: 'progress', task: `export ${name}`, done, total, unit: 'bytes'});
    }
    const annotations = {[REF_NAME_ANNOTATION]: exportName, [CONTAINERD_NAME_ANNOTATION]: exportName};
    const index = {schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{...root, annotations}]};
    await writer.file('index.json', Buffer.from(JSON.stringify(index)));
    await writer.finish();
    return {ref: name, name: exportName, root, blobs: blobs.length, bytes: total};
  } finally {
    await cache.releaseLease(lease);
  }
}

/** Exports to a file, written under a temp name and renamed when complete. */
export async function exportImageToFile(cache: ImageCache, ref: string, path: string, options: ExportOptions = {}): Promise<ExportResult> {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tskit-export.tmp`);
  const out = createWriteStream(temp);
  try {
    const result = await exportImage(cache, ref, out, options);
    await rename(temp, path);
    return result;
  } catch (error) {
    out.destroy();
    await unlink(temp).catch(() => {});
    throw error;
  }
}

export interface ImportOptions {
  /** Name for the archive's image when it carries none (or to rename a single image). */
  name?: string;
  emit?: Emit;
}

export interface ImportedImage {
  ref: string;
  digest: string;
  mediaType: string;
  /** Platforms whose images are complete in the cache after the import. */
  platforms: string[];
}

export interface ImportResult {
  images: ImportedImage[];
  blobs: number;
  newBlobs: number;
}

const MAX_INDEX_BYTES = 8 * 1024 * 1024;

interface ImportState {
  cache: ImageCache;
  lease: Lease;
  added: Set<string>;
  seen: Set<string>;
  what: string;
}

/** Streams one blob into the cache, verified against `digest` and `size`. */
async function ingestBlob(state: ImportState, digest: string, size: number, content: AsyncIterable<Uint8Array>): Promise<void> {
  const {cache} = state;
  await cache.extendLease(state.lease, [digest]);
  state.seen.add(digest);
  if ((await cache.blobSize(digest)) === size) {
    for await (const _chunk of content) {
      // already stored; content-addressed, so the bytes are the same or the digest check of the original caught it
    }
    return;
  }
  const temp = await cache.ingestTempPath();
  const handle = await open(temp, 'w');
  const {algorithm} = parseDigest(digest, `blob name in ${state.what}`);
  const hash = createDigester(algorithm);
  let written = 0;
  try {
    for await (const chunk of content) {
      written += chunk.length;
      if (written > size) throw new TskitError(`blob ${digest} in ${state.what} is longer than its size ${size}`);
      hash.update(chunk);
      try {
        await writeFullyAt(handle, chunk, written - chunk.length);
      } catch (error) {
        if (isNoSpace(error)) throw await noSpaceError(temp, `blob ${digest} from ${state.what}`, size, written - chunk.length, error);
        throw error;
      }
    }
    await handle.close();
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (written !== size || actual !== digest) {
      throw new TskitError(`blob ${digest} in ${state.what} failed verification: its content has digest ${actual} (${written} bytes)`);
    }
    if (await cache.commitTemp(temp, digest, size)) state.added.add(digest);
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
}

function blobDigestFromPath(path: string): string | undefined {
  const match = /^(?:\.\/)?blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(path);
  return match ? `${match[1]}:${match[2]}` : undefined;
}

/**
 * Imports an OCI image layout: a tar (optionally gzip'd) as a path or '-' with `input`, or a
 * directory. Every blob is verified; each image in its index.json is recorded under its
 * io.containerd.image.name or full-reference org.opencontainers.image.ref.name annotation,
 * or `name`.
 */
export async function importLayout(cache: ImageCache, source: string, options: ImportOptions & {input?: Readable} = {}): Promise<ImportResult> {
  const what = source === '-' ? 'standard input' : source;
  await cache.ensureLayout();
  const lease = await cache.acquireLease();
  const state: ImportState = {cache, lease, added: new Set(), seen: new Set(), what};
  try {
    let indexBytes: Buffer | undefined;
    let isDirectory = false;
    if (source !== '-') {
      try {
        isDirectory = (await stat(source)).isDirectory();
      } catch (error) {
        throw new TskitError(`cannot read ${source}: ${(error as Error).message}`);
      }
    }
    if (isDirectory) {
      indexBytes = await readLayoutDirectory(state, source);
    } else {
      const input = source === '-' ? options.input ?? process.stdin : createReadStream(source);
      indexBytes = await readLayoutTar(state, input);
    }
    const result = await recordImported(state, indexBytes, options.name);
    // Blobs the archive carried that none of its images uses do not stay.
    const used = new Set<string>();
    for (const image of result.images) for (const digest of (await cache.closure(image.digest)).digests) used.add(digest);
    const unused = new Set([...state.added].filter((d) => !used.has(d)));
    await cache.abandon(unused, lease);
    return {...result, blobs: state.seen.size, newBlobs: state.added.size - unused.size};
  } catch (error) {
    await cache.abandon(state.added, lease);
    throw error;
  }
}

async function readLayoutTar(state: ImportState, input: Readable): Promise<Buffer> {
  // A .tar.gz is accepted too: decompress() passes plain tar through untouched.
  const tar = Readable.from(decompress(input as AsyncIterable<Uint8Array>, state.what), {objectMode: false});
  let indexBytes: Buffer | undefined;
  let sawLayout = false;
  let sawDockerManifest = false;
  for await (const member of readTarMembers(tar)) {
    const name = member.name.replace(/^\.\//, '');
    const digest = member.type === 'file' ? blobDigestFromPath(name) : undefined;
    if (digest) {
      await ingestBlob(state, digest, member.size, member.content);
      continue;
    }
    if (member.type === 'file' && (name === 'index.json' || name === 'oci-layout')) {
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of member.content) {
        total += chunk.length;
        if (total > MAX_INDEX_BYTES) throw new TskitError(`${name} in ${state.what} is larger than ${MAX_INDEX_BYTES} bytes`);
        chunks.push(chunk);
      }
      if (name === 'index.json') indexBytes = Buffer.concat(chunks);
      else {
        checkLayoutFile(Buffer.concat(chunks), state.what);
        sawLayout = true;
      }
      continue;
    }
    if (name === 'manifest.json') sawDockerManifest = true;
    for await (const _chunk of member.content) {
      // not part of an OCI layout
    }
  }
  if (!indexBytes) {
    throw new TskitError(
      sawDockerManifest
        ? `${state.what} is a \`docker save\` archive, not an OCI layout: convert it with \`skopeo copy docker-archive:${state.what} oci-archive:OUT.tar\``
        : `${state.what} is not an OCI image layout: it has no index.json`,
    );
  }
  if (!sawLayout) throw new TskitError(`${state.what} is not an OCI image layout: it has no oci-layout file`);
  return indexBytes;
}

function checkLayoutFile(bytes: Buffer, what: string): void {
  try {
    const layout = JSON.parse(bytes.toString('utf8')) as {imageLayoutVersion?: string};
    if (typeof layout.imageLayoutVersion === 'string' && layout.imageLayoutVersion.startsWith('1.')) return;
  } catch {
    // fall through
  }
  throw new TskitError(`${what} has an oci-layout file tskit does not understand (expected imageLayoutVersion 1.x)`);
}

/** Copies the blobs reachable from a layout directory's index.json into the cache. */
async function readLayoutDirectory(state: ImportState, dir: string): Promise<Buffer> {
  let layout: Buffer;
  let indexBytes: Buffer;
  try {
    layout = await readFile(join(dir, 'oci-layout'));
    indexBytes = await readFile(join(dir, 'index.json'));
  } catch {
    throw new TskitError(`${dir} is not an OCI image layout: it needs oci-layout and index.json`);
  }
  checkLayoutFile(layout, dir);
  const index = parseLayoutIndex(indexBytes, dir);
  const pending: Descriptor[] = [...index.manifests];
  const done = new Set<string>();
  while (pending.length) {
    const descriptor = pending.shift()!;
    if (done.has(descriptor.digest)) continue;
    done.add(descriptor.digest);
    const {algorithm, hex} = parseDigest(descriptor.digest, `a descriptor in ${dir}`);
    const path = join(dir, 'blobs', algorithm, hex);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      continue; // a layout may hold only some platforms of an index
    }
    if (size !== descriptor.size) throw new TskitError(`blob ${descriptor.digest} in ${dir} is ${size} bytes, but its descriptor gives ${descriptor.size}`);
    await ingestBlob(state, descriptor.digest, size, createReadStream(path));
    const looksLikeJson = INDEX_TYPES.has(descriptor.mediaType) || descriptor.mediaType?.endsWith('manifest.v1+json') || descriptor.mediaType?.endsWith('manifest.v2+json') || !descriptor.mediaType;
    if (looksLikeJson && size <= MAX_INDEX_BYTES) {
      let json: {manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]};
      try {
        json = JSON.parse(await readFile(path, 'utf8')) as typeof json;
      } catch {
        continue;
      }
      if (Array.isArray(json.manifests)) pending.push(...json.manifests);
      if (json.config) pending.push(json.config);
      if (Array.isArray(json.layers)) pending.push(...json.layers);
    }
  }
  return indexBytes;
}

function parseLayoutIndex(bytes: Buffer, what: string): ImageIndex {
  let index: ImageIndex;
  try {
    index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
  } catch (error) {
    throw new TskitError(`index.json in ${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(index.manifests)) throw new TskitError(`index.json in ${what} has no manifests list`);
  for (const [i, m] of index.manifests.entries()) {
    if (typeof m?.digest !== 'string' || typeof m.size !== 'number') throw new TskitError(`entry ${i} of index.json in ${what} is not a descriptor`);
    parseDigest(m.digest, `entry ${i} of index.json in ${what}`);
  }
  return index;
}

/** A name from an index.json entry: containerd's annotation, or ref.name when it is a full reference. */
function entryName(descriptor: Descriptor): string | undefined {
  const containerd = descriptor.annotations?.[CONTAINERD_NAME_ANNOTATION];
  if (containerd) return containerd;
  const refName = descriptor.annotations?.[REF_NAME_ANNOTATION];
  // The OCI convention is a bare tag ("3.20"), which names no repository.
  if (refName && /[/:@]/.test(refName)) return refName;
  return undefined;
}

async function recordImported(state: ImportState, indexBytes: Buffer, name: string | undefined): Promise<{images: ImportedImage[]}> {
  const {cache, what} = state;
  const index = parseLayoutIndex(indexBytes, what);
  if (index.manifests.length === 0) throw new TskitError(`${what} holds no images (its index.json lists none)`);
  if (name && index.manifests.length > 1) throw new TskitError(`${what} holds ${index.manifests.length} images; a name can only be given to one`);
  const plans: Array<{ref: string; root: Descriptor}> = [];
  for (const descriptor of index.manifests) {
    const raw = name ?? entryName(descriptor);
    if (!raw) {
      const tag = descriptor.annotations?.[REF_NAME_ANNOTATION];
      throw new TskitError(
        `the image ${descriptor.digest} in ${what} ${tag ? `is named only ${JSON.stringify(tag)}, not a full reference` : 'has no name'}: give one with --name REF`,
      );
    }
    const ref = formatReference(parseReference(raw));
    const size = await cache.blobSize(descriptor.digest);
    if (size === undefined) throw new TskitError(`${what} names image ${descriptor.digest} (${ref}) in index.json but does not contain it`);
    if (size !== descriptor.size) throw new TskitError(`image ${descriptor.digest} (${ref}) in ${what} is ${size} bytes, but index.json gives ${descriptor.size}`);
    plans.push({ref, root: descriptor});
  }
  const images: ImportedImage[] = [];
  for (const {ref, root} of plans) {
    const bytes = await cache.readBlobBytes(root.digest, root.size);
    if (!bytes) throw new TskitError(`image ${root.digest} (${ref}) in ${what} is damaged`);
    const json = parseJsonBlob<{mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]}>(bytes, `image ${root.digest} (${ref}) in ${what}`);
    const mediaType = json.mediaType || root.mediaType || (Array.isArray(json.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest);
    const platforms = await completePlatforms(cache, json);
    if (!Array.isArray(json.manifests) && platforms.length === 0) {
      throw new TskitError(`image ${ref} in ${what} is incomplete: its config or layers are missing`);
    }
    await cache.recordRef(ref, {mediaType, digest: root.digest, size: root.size});
    images.push({ref, digest: root.digest, mediaType, platforms});
  }
  return {images};
}

/** Platforms whose manifest, config and layers are all in the cache. */
async function completePlatforms(
  cache: ImageCache,
  json: {manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]},
  platform?: Platform,
): Promise<string[]> {
  if (Array.isArray(json.manifests)) {
    const found: string[] = [];
    for (const child of json.manifests) {
      if (child.platform?.os === 'unknown') continue;
      const bytes = await cache.readBlobBytes(child.digest, child.size);
      if (!bytes) continue;
      found.push(...(await completePlatforms(cache, parseJsonBlob<typeof json>(bytes, `manifest ${child.digest}`), child.platform)));
    }
    return found;
  }
  if (!json.config || !Array.isArray(json.layers)) return [];
  for (const part of [json.config, ...json.layers]) if (!(await cache.hasBlob(part))) return [];
  if (platform) return [formatPlatform(platform)];
  const config = await cache.readBlobBytes(json.config.digest, json.config.size);
  const parsed = config ? parseJsonBlob<{os?: string; architecture?: string; variant?: string}>(config, `config ${json.config.digest}`) : {};
  return [formatPlatform({os: parsed.os || 'linux', architecture: parsed.architecture || 'unknown', ...(parsed.variant ? {variant: parsed.variant} : {})})];
}
