// The image cache: an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>) that
// LinuxKit and skopeo can read, with index.json naming each cached reference through the
// org.opencontainers.image.ref.name annotation (the full normalised reference, as LinuxKit
// records it). It is tskit's ImageSource: references resolve from the cache when it has them
// (a digest-pinned reference makes no registry request), and are pulled otherwise.
//
// Safety with concurrent builds sharing one directory:
// - blobs are written to .tskit/ingest, verified while streaming, then renamed into place;
// - index.json is rewritten (temp file + rename) only under the cache lock;
// - every resolve holds a lease on the digests it reads or writes, and rm/clean never delete
//   leased blobs; a failed pull removes only what it added and nobody else needs.
import {createHash, randomBytes} from 'node:crypto';
import {createReadStream, unlinkSync} from 'node:fs';
import {mkdir, readdir, readFile, rename, stat, unlink} from 'node:fs/promises';
import {homedir, hostname} from 'node:os';
import {join} from 'node:path';
import {pipeline, type Readable} from 'node:stream';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import {deriveFeeds} from './derive-feed.ts';
import {CacheLock, currentProcess, deadLeases, isAlive, Lease, liveLeasedDigests, writeFileAtomic} from './cache-lock.ts';
import {BlobVerificationError, digestOf, parseDigest, VerifyingStream} from './digest.ts';
import {parseJsonBlob} from './json-blob.ts';
import {isNoSpace, writeFileReporting} from './file-writes.ts';
import {openLayer} from './layer.ts';
import {checkImagePlatform, formatPlatform, selectEntry} from './platform.ts';
import {formatReference, parseReference, withDigest, type ImageReference} from './reference.ts';
import {MAX_MANIFEST_BYTES, RegistryClient, RegistryError, type RegistryClientOptions} from './registry.ts';
import {
  MediaTypes,
  type BlobDeriver,
  type Descriptor,
  type ImageConfiguration,
  type ImageIndex,
  type ImageManifest,
  type ImageSource,
  type Platform,
  type ResolvedImage,
} from './types.ts';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** In ingest temp names, so a sweep leaves other hosts' files alone on shared storage. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
/** containerd's name annotation, which LinuxKit's `cache import` reads. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
const OCI_LAYOUT = JSON.stringify({imageLayoutVersion: '1.0.0'});
const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

/**
 * The cache directory: `--cache-dir`, else $TSKIT_CACHE, else $XDG_CACHE_HOME/tskit, else
 * ~/.cache/tskit.
 */
export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.TSKIT_CACHE) return env.TSKIT_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'tskit');
  return join(env.HOME || homedir(), '.cache', 'tskit');
}

export interface ImageCacheOptions {
  dir: string;
  /** A client to pull with; by default one is made from `registry` options when first needed. */
  client?: RegistryClient;
  registry?: RegistryClientOptions;
  /** Re-resolve tag references at the registry even when the cache has them (LinuxKit's --pull). */
  pull?: boolean;
  emit?: Emit;
  /** Blob downloads running at once (across all resolves of this cache). */
  concurrency?: number;
  /** Data to derive from blobs while they download (stored as writeDerived stores it). */
  derivers?: readonly BlobDeriver[];
  lockTimeoutMs?: number;
}

export interface ResolveOptions {
  pull?: boolean;
}

/** One reference recorded in the cache, as `tskit cache ls` shows it. */
export interface CachedImage {
  ref: string;
  digest: string;
  mediaType: string;
  /** Platforms whose manifests are in the cache (os/arch[/variant]). */
  platforms: string[];
  /** Bytes of all of this reference's blobs present in the cache. */
  size: number;
  /** Bytes no other reference uses (what `cache rm` of this reference frees). */
  uniqueSize: number;
  /** Bytes shared with other references. */
  sharedSize: number;
  blobs: number;
}

export interface CacheListing {
  dir: string;
  images: CachedImage[];
  /** Every blob file in the cache. */
  totalSize: number;
  blobs: number;
  /** Blobs no reference and no live lease needs (what `clean --unused` frees). */
  unusedSize: number;
  unusedBlobs: number;
}

export interface RemovalResult {
  removed: string[];
  deletedBlobs: string[];
  freedBytes: number;
  /** Blobs of removed references kept because other references or running pulls use them. */
  keptBlobs: string[];
}

export interface VerifyResult {
  checked: number;
  corrupt: string[];
  removed: string[];
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

type LocalOutcome = {image: ResolvedImage} | {missing: string} | {mismatch: TskitError};
type FollowedIndexes = {digest: string; bytes: Buffer; indexDigest?: string} | {missing: string};

/**
 * Indexes followed from a root to an image manifest, the root included (containerd follows
 * nested indexes too); a deeper chain is refused with its own message.
 */
export const MAX_INDEX_DEPTH = 4;

/** Runs at most `limit` tasks at a time. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly limit: number;
  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Emits progress for one pull at most every 250 ms, plus the final count. */
class Progress {
  private done = 0;
  private last = 0;
  private readonly emit: Emit;
  private readonly task: string;
  private readonly total: number;
  constructor(emit: Emit, task: string, total: number) {
    this.emit = emit;
    this.task = task;
    this.total = total;
  }
  add(delta: number): void {
    this.done += delta;
    const now = Date.now();
    if (now - this.last >= 250) {
      this.last = now;
      this.emit({type: 'progress', task: this.task, done: this.done, total: this.total, unit: 'bytes'});
    }
  }
  finish(): void {
    this.emit({type: 'progress', task: this.task, done: this.total, total: this.total, unit: 'bytes'});
  }
}

// Leases of a process that exits without close() are removed on the way out (a crash leaves
// them to the dead-pid check).
const exitLeases = new Set<Lease>();
let exitHook = false;
function releaseAtExit(lease: Lease): void {
  exitLeases.add(lease);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const held of exitLeases) held.releaseSync(unlinkSync);
    });
  }
}

function isIndexType(mediaType: string | undefined, json: unknown): boolean {
  if (mediaType && INDEX_TYPES.has(mediaType)) return true;
  if (mediaType && MANIFEST_TYPES.has(mediaType)) return false;
  return Array.isArray((json as {manifests?: unknown}).manifests);
}

function checkDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Descriptor;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new TskitError(`${what} is not a valid descriptor (needs digest and size)`);
  }
  parseDigest(d.digest, what);
  return d;
}

function parseManifest(bytes: Buffer, what: string): ImageManifest {
  const json = parseJsonBlob<ImageManifest>(bytes, what);
  if (json.schemaVersion !== 2) throw new TskitError(`${what} has schemaVersion ${JSON.stringify(json.schemaVersion)}, not 2`);
  checkDescriptor(json.config, `the config descriptor of ${what}`);
  if (!Array.isArray(json.layers)) throw new TskitError(`${what} has no layers list`);
  json.layers.forEach((layer, i) => checkDescriptor(layer, `layer ${i} of ${what}`));
  return json;
}

function parseIndex(bytes: Buffer, what: string): ImageIndex {
  const json = parseJsonBlob<ImageIndex>(bytes, what);
  if (json.schemaVersion !== 2) throw new TskitError(`${what} has schemaVersion ${JSON.stringify(json.schemaVersion)}, not 2`);
  if (!Array.isArray(json.manifests)) throw new TskitError(`${what} has no manifests list`);
  json.manifests.forEach((m, i) => checkDescriptor(m, `entry ${i} of ${what}`));
  return json;
}

function parseConfig(bytes: Buffer, what: string): ImageConfiguration {
  return parseJsonBlob<ImageConfiguration>(bytes, what);
}

export class ImageCache implements ImageSource {
  readonly dir: string;
  private readonly options: ImageCacheOptions;
  private readonly emit: Emit;
  private readonly lock: CacheLock;
  private readonly leases = new Set<Lease>();
  private readonly downloads: Semaphore;
  private readonly inflight = new Map<string, Promise<boolean>>();
  private readonly resolving = new Map<string, Promise<ResolvedImage>>();
  private client: RegistryClient | undefined;
  private ownsClient = false;
  private layoutReady = false;

  constructor(options: ImageCacheOptions) {
    this.options = options;
    this.dir = options.dir;
    this.emit = options.emit ?? ignoreEvents;
    this.lock = new CacheLock(join(this.stateDir, 'lock'), {timeoutMs: options.lockTimeoutMs});
    this.downloads = new Semaphore(options.concurrency ?? 3);
    this.client = options.client;
  }

  private get stateDir(): string {
    return join(this.dir, '.tskit');
  }
  private get leaseDir(): string {
    return join(this.stateDir, 'leases');
  }
  private get ingestDir(): string {
    return join(this.stateDir, 'ingest');
  }
  get indexPath(): string {
    return join(this.dir, 'index.json');
  }

  /** Releases this cache's leases and closes the registry client it made. */
  async close(): Promise<void> {
    const leases = [...this.leases];
    this.leases.clear();
    for (const lease of leases) exitLeases.delete(lease);
    await Promise.all(leases.map((lease) => lease.release()));
    if (this.ownsClient) await this.client?.close();
  }

  private registry(): RegistryClient {
    if (!this.client) {
      this.client = new RegistryClient({...this.options.registry, emit: this.options.registry?.emit ?? this.emit});
      this.ownsClient = true;
    }
    return this.client;
  }

  // ---- layout ----------------------------------------------------------------------------

  /** Creates the layout (directories, oci-layout, empty index.json) when missing. */
  async ensureLayout(): Promise<void> {
    if (this.layoutReady) return;
    await mkdir(join(this.dir, 'blobs', 'sha256'), {recursive: true});
    await mkdir(this.leaseDir, {recursive: true});
    await mkdir(this.ingestDir, {recursive: true});
    await this.sweepDead();
    const layoutPath = join(this.dir, 'oci-layout');
    try {
      await stat(layoutPath);
    } catch {
      await writeFileAtomic(layoutPath, OCI_LAYOUT);
    }
    try {
      await stat(this.indexPath);
    } catch {
      await this.lock.withLock(async () => {
        try {
          await stat(this.indexPath);
        } catch {
          await writeFileAtomic(this.indexPath, JSON.stringify({schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: []}));
        }
      });
    }
    this.layoutReady = true;
  }

  /** index.json as it is now (an empty index when the cache does not exist yet). Needs no lock: it is replaced atomically. */
  async readIndex(): Promise<LayoutIndex> {
    let text: string;
    try {
      text = await readFile(this.indexPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: []};
      throw error;
    }
    let index: LayoutIndex;
    try {
      index = JSON.parse(text) as LayoutIndex;
    } catch (error) {
      throw new TskitError(`the cache index ${this.indexPath} is not valid JSON (${(error as Error).message}); remove it or run \`tskit cache clean\``);
    }
    if (!Array.isArray(index.manifests)) throw new TskitError(`the cache index ${this.indexPath} has no manifests list`);
    return index;
  }

  private async writeIndex(index: LayoutIndex): Promise<void> {
    await writeFileAtomic(this.indexPath, `${JSON.stringify(index, null, 2)}\n`);
  }

  /** The recorded root descriptor for a normalised reference. */
  async findRef(name: string): Promise<Descriptor | undefined> {
    const index = await this.readIndex();
    return index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
  }

  /** Records (or re-points) `name` in index.json. */
  async recordRef(name: string, root: Descriptor, extraAnnotations: Record<string, string> = {}): Promise<void> {
    await this.ensureLayout();
    await this.lock.withLock(async () => {
      const index = await this.readIndex();
      const entry: Descriptor = {
        mediaType: root.mediaType,
        digest: root.digest,
        size: root.size,
        annotations: {...extraAnnotations, [REF_NAME_ANNOTATION]: name},
      };
      const existing = index.manifests.findIndex((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
      if (existing >= 0) {
        const old = index.manifests[existing]!;
        if (old.digest === entry.digest && old.mediaType === entry.mediaType && old.size === entry.size) return;
        index.manifests[existing] = entry;
      } else {
        index.manifests.push(entry);
      }
      await this.writeIndex(index);
    });
  }

  blobPath(digest: string): string {
    const {algorithm, hex} = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  /** Deletes a blob and whatever tskit derived from it. */
  private async deleteBlob(digest: string): Promise<void> {
    await unlink(this.blobPath(digest)).catch(() => {});
    const {algorithm, hex} = parseDigest(digest);
    let kinds: string[] = [];
    try {
      kinds = await readdir(this.derivedDir);
    } catch {
      return;
    }
    for (const kind of kinds) await unlink(join(this.derivedDir, kind, algorithm, hex)).catch(() => {});
  }

  private get derivedDir(): string {
    return join(this.stateDir, 'derived');
  }

  /**
   * Data derived from a blob (a layer's tar headers, say), so later builds need not compute
   * it again. Kept beside the blob and deleted with it; `kind` names the format and its
   * version, so a reader never meets data it does not understand.
   */
  async readDerived(kind: string, digest: string): Promise<Buffer | undefined> {
    const {algorithm, hex} = parseDigest(digest);
    try {
      return await readFile(join(this.derivedDir, kind, algorithm, hex));
    } catch {
      return undefined;
    }
  }

  async writeDerived(kind: string, digest: string, data: Buffer): Promise<void> {
    const {algorithm, hex} = parseDigest(digest);
    const dir = join(this.derivedDir, kind, algorithm);
    await mkdir(dir, {recursive: true});
    await writeFileAtomic(join(dir, hex), data);
  }

  /** The size of a stored blob, or undefined when it is absent. */
  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Whether a blob is stored with the descriptor's size (existing blobs are trusted by size; see verify()). */
  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.blobSize(descriptor.digest)) === descriptor.size;
  }

  private ingestPath(): string {
    return join(this.ingestDir, `${process.pid}-${HOST_TAG}-${randomBytes(6).toString('hex')}`);
  }

  /** Reads a small blob (manifest, index, config) and checks its digest; undefined when absent or damaged. */
  private async readSmallBlob(digest: string, size?: number): Promise<Buffer | undefined> {
    const stored = await this.blobSize(digest);
    if (stored === undefined) return undefined;
    if (stored > MAX_MANIFEST_BYTES) {
      throw new TskitError(`blob ${digest} is ${stored} bytes: too big for a manifest, index or config (is a layer digest used as an image reference?)`);
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if ((size !== undefined && bytes.length !== size) || digestOf(bytes, parseDigest(digest).algorithm) !== digest) {
      this.emit({type: 'log', level: 'warn', message: `cached blob ${digest} is damaged; removing it`});
      await this.deleteBlob(digest);
      return undefined;
    }
    return bytes;
  }

  /** Stores bytes already verified against `digest`; returns true when the blob is new. */
  private async storeBytes(digest: string, bytes: Buffer): Promise<boolean> {
    if ((await this.blobSize(digest)) === bytes.length) return false;
    await this.ensureLayout();
    const temp = this.ingestPath();
    try {
      await writeFileReporting(temp, bytes, `blob ${digest}`);
      return await this.publish(temp, digest, bytes.length);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
  }

  /**
   * The one way a blob gets its name: a temp file whose bytes were hashed to `digest` as they
   * were written, and which holds exactly `size` bytes (a short write, a full disk or a
   * second writer would show here). Returns true when the blob is new.
   */
  private async publish(temp: string, digest: string, size: number): Promise<boolean> {
    const stored = (await stat(temp)).size;
    if (stored !== size) throw new BlobVerificationError(`blob ${digest}: ${temp} holds ${stored} bytes, not the ${size} that were verified; not stored`, digest);
    const path = this.blobPath(digest);
    const existed = (await this.blobSize(digest)) !== undefined;
    await mkdir(join(path, '..'), {recursive: true});
    await rename(temp, path);
    return !existed;
  }

  /** Registers digests with a lease, under the cache lock. */
  private async hold(lease: Lease, digests: string[]): Promise<void> {
    if (digests.every((d) => lease.has(d))) return;
    await this.ensureLayout();
    await this.lock.withLock(() => lease.addLocked(digests));
  }

  private newLease(): Lease {
    const lease = new Lease(this.leaseDir);
    this.leases.add(lease);
    releaseAtExit(lease);
    return lease;
  }

  private async dropLease(lease: Lease): Promise<void> {
    this.leases.delete(lease);
    exitLeases.delete(lease);
    await lease.release();
  }

  // ---- ImageSource -----------------------------------------------------------------------

  /**
   * Resolves a reference to the image for `platform`: from the cache when it is complete
   * there (and, for tags, unless pulling is asked for), else from the registry. The blobs
   * stay leased until close().
   */
  resolve(ref: string, platform: Platform, options: ResolveOptions = {}): Promise<ResolvedImage> {
    const parsed = parseReference(ref);
    const name = formatReference(parsed);
    const pull = (options.pull ?? this.options.pull ?? false) && parsed.digest === undefined;
    const key = `${name} ${formatPlatform(platform)} ${pull}`;
    let pending = this.resolving.get(key);
    if (!pending) {
      pending = this.resolveUncached(parsed, name, platform, pull);
      this.resolving.set(key, pending);
      pending.catch(() => this.resolving.delete(key));
    }
    return pending;
  }

  private async resolveUncached(ref: ImageReference, name: string, platform: Platform, pull: boolean): Promise<ResolvedImage> {
    const lease = this.newLease();
    try {
      if (!pull) {
        const recorded = ref.digest === undefined ? await this.findRef(name) : undefined;
        const rootDigest = ref.digest ?? recorded?.digest;
        if (rootDigest) {
          const local = await this.resolveLocal(name, rootDigest, platform, lease);
          if ('image' in local) {
            if (ref.digest !== undefined && (await this.findRef(name))?.digest !== rootDigest) {
              const size = (await this.blobSize(rootDigest)) ?? 0;
              const mediaType = local.image.indexDigest ? (await this.rootMediaType(rootDigest)) : local.image.manifest.mediaType ?? MediaTypes.ociManifest;
              await this.recordRef(name, {mediaType, digest: rootDigest, size});
            }
            this.emit({type: 'image.resolved', ref: name, digest: local.image.digest, platform: formatPlatform(platform), fromCache: true});
            return local.image;
          }
          // A pinned index or image that lacks the platform will not gain it from the registry.
          if ('mismatch' in local && ref.digest !== undefined) throw local.mismatch;
          if ('missing' in local) {
            // Complete what the cache has for this reference, by digest, so a tag keeps
            // pointing at the index it was first pulled as (LinuxKit adds content the same way).
            this.emit({type: 'log', level: 'debug', message: `${name}: ${local.missing} not in the cache; pulling it`});
            try {
              return await this.pull(withDigest(ref, rootDigest), name, platform, lease);
            } catch (error) {
              if (!(error instanceof RegistryError && error.status === 404) || ref.digest !== undefined) throw error;
              this.emit({type: 'log', level: 'debug', message: `${name}: the registry no longer has ${rootDigest}; pulling the tag again`});
            }
          }
          else this.emit({type: 'log', level: 'debug', message: `${name}: ${local.mismatch.message} in the cache; pulling the tag again`});
        }
      }
      return await this.pull(ref, name, platform, lease);
    } catch (error) {
      await this.dropLease(lease);
      // a full disk outside the writes that name their file (a directory, say)
      if (!(error instanceof TskitError) && isNoSpace(error)) {
        throw new TskitError(`no space left in the cache ${this.dir} while pulling ${name}: ${(error as Error).message}; free some space and try again`, {cause: error});
      }
      throw error;
    }
  }

  private async rootMediaType(digest: string): Promise<string> {
    const bytes = await this.readSmallBlob(digest);
    if (!bytes) return MediaTypes.ociManifest;
    const json = parseJsonBlob<{mediaType?: string}>(bytes, digest);
    return json.mediaType ?? (isIndexType(undefined, json) ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  }

  /** Builds the resolved image from cached blobs alone, or says what is missing. */
  private async resolveLocal(name: string, rootDigest: string, platform: Platform, lease: Lease): Promise<LocalOutcome> {
    await this.hold(lease, [rootDigest]);
    const rootBytes = await this.readSmallBlob(rootDigest);
    if (!rootBytes) return {missing: `root ${rootDigest}`};
    let chain: FollowedIndexes;
    try {
      chain = await this.followIndexes(name, {digest: rootDigest, bytes: rootBytes}, platform, lease, (d) => this.readSmallBlob(d.digest, d.size));
    } catch (error) {
      if (error instanceof TskitError) return {mismatch: error};
      throw error;
    }
    if ('missing' in chain) return chain;
    const {digest: manifestDigest, bytes: manifestBytes, indexDigest} = chain;
    const manifest = parseManifest(manifestBytes, `manifest ${manifestDigest} of ${name}`);
    await this.hold(lease, [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
    const configBytes = await this.readSmallBlob(manifest.config.digest, manifest.config.size);
    if (!configBytes) return {missing: `config ${manifest.config.digest}`};
    const config = parseConfig(configBytes, `config ${manifest.config.digest} of ${name}`);
    if (!indexDigest) {
      try {
        checkImagePlatform(config, platform, name);
      } catch (error) {
        if (error instanceof TskitError) return {mismatch: error};
        throw error;
      }
    }
    for (const layer of manifest.layers) {
      if (!(await this.hasBlob(layer))) return {missing: `layer ${layer.digest}`};
    }
    const image: ResolvedImage = {ref: name, digest: manifestDigest, manifest, config, layers: manifest.layers};
    if (indexDigest) image.indexDigest = indexDigest;
    return {image};
  }

  /**
   * From a root (an image manifest, or an index) down to the image manifest for `platform`,
   * through nested indexes as containerd follows them, at most MAX_INDEX_DEPTH of them.
   * `load` gives a chosen entry's bytes (undefined: missing).
   */
  private async followIndexes(
    name: string,
    root: {digest: string; bytes: Buffer},
    platform: Platform,
    lease: Lease,
    load: (entry: Descriptor) => Promise<Buffer | undefined>,
  ): Promise<FollowedIndexes> {
    let current: {digest: string; bytes: Buffer; mediaType?: string} = root;
    for (let depth = 0; ; depth++) {
      const json = parseJsonBlob<{mediaType?: string}>(current.bytes, `${current.digest} of ${name}`);
      if (!isIndexType(current.mediaType ?? json.mediaType, json)) {
        return {digest: current.digest, bytes: current.bytes, ...(depth > 0 ? {indexDigest: root.digest} : {})};
      }
      if (depth >= MAX_INDEX_DEPTH) {
        throw new TskitError(`image ${name}: index ${root.digest} has indexes nested more than ${MAX_INDEX_DEPTH} deep (the one at depth ${depth + 1} is ${current.digest}); tskit follows at most ${MAX_INDEX_DEPTH}`);
      }
      const chosen = selectEntry(parseIndex(current.bytes, `index ${current.digest} of ${name}`), platform, name);
      await this.hold(lease, [chosen.digest]);
      const bytes = await load(chosen);
      if (!bytes) return {missing: `manifest ${chosen.digest}`};
      current = {digest: chosen.digest, bytes, mediaType: chosen.mediaType};
    }
  }

  /** Pulls what the cache lacks of `ref` for `platform`, then records the reference. */
  private async pull(ref: ImageReference, name: string, platform: Platform, lease: Lease): Promise<ResolvedImage> {
    const registry = this.registry();
    const added = new Set<string>();
    this.emit({type: 'log', level: 'info', message: `pulling ${name} (${formatPlatform(platform)})`});
    try {
      const root = await registry.getManifest(ref);
      await this.hold(lease, [root.digest]);
      if (await this.storeBytes(root.digest, root.bytes)) added.add(root.digest);
      const chain = await this.followIndexes(name, {digest: root.digest, bytes: root.bytes}, platform, lease, async (entry) => {
        const local = await this.readSmallBlob(entry.digest, entry.size);
        if (local) return local;
        const fetched = await registry.getManifest(withDigest(ref, entry.digest));
        if (fetched.size !== entry.size) {
          throw new BlobVerificationError(`manifest ${entry.digest} of image ${name} is ${fetched.size} bytes, but the index gives ${entry.size}`, entry.digest);
        }
        if (await this.storeBytes(entry.digest, fetched.bytes)) added.add(entry.digest);
        return fetched.bytes;
      });
      if ('missing' in chain) throw new TskitError(`image ${name}: ${chain.missing} is missing`);
      const {digest: manifestDigest, bytes: manifestBytes, indexDigest} = chain;
      const manifest = parseManifest(manifestBytes, `manifest ${manifestDigest} of ${name}`);
      await this.hold(lease, [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
      let configBytes = await this.readSmallBlob(manifest.config.digest, manifest.config.size);
      if (!configBytes) {
        configBytes = await registry.getBlobBytes(ref, manifest.config);
        if (await this.storeBytes(manifest.config.digest, configBytes)) added.add(manifest.config.digest);
      }
      const config = parseConfig(configBytes, `config ${manifest.config.digest} of ${name}`);
      if (!indexDigest) checkImagePlatform(config, platform, name);

      const missing: Descriptor[] = [];
      for (const layer of manifest.layers) {
        if (!(await this.hasBlob(layer)) && !missing.some((m) => m.digest === layer.digest)) missing.push(layer);
      }
      const progress = new Progress(this.emit, `pull ${name}`, missing.reduce((sum, l) => sum + l.size, 0));
      const results = await Promise.allSettled(missing.map((layer) => this.fetchBlob(ref, name, layer, progress, added)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (missing.length) progress.finish();

      const rootDescriptor: Descriptor = {mediaType: root.mediaType, digest: root.digest, size: root.size};
      await this.recordRef(name, rootDescriptor);
      this.emit({type: 'image.resolved', ref: name, digest: manifestDigest, platform: formatPlatform(platform), fromCache: false});
      const image: ResolvedImage = {ref: name, digest: manifestDigest, manifest, config, layers: manifest.layers};
      if (indexDigest) image.indexDigest = indexDigest;
      return image;
    } catch (error) {
      await this.discard(added, lease);
      throw error;
    }
  }

  /** Downloads one blob into place (once per process however many pulls want it); true when it is new. */
  private fetchBlob(ref: ImageReference, name: string, descriptor: Descriptor, progress: Progress, added: Set<string>): Promise<boolean> {
    let pending = this.inflight.get(descriptor.digest);
    if (!pending) {
      pending = this.downloads.run(async () => {
        if (await this.hasBlob(descriptor)) return false;
        await this.ensureLayout();
        const temp = this.ingestPath();
        const path = this.blobPath(descriptor.digest);
        const feeds = deriveFeeds(this.options.derivers ?? [], descriptor);
        let derived: Array<{kind: string; data: Buffer}> = [];
        try {
          await this.registry().downloadBlob(ref, descriptor, temp, {
            onProgress: (delta) => progress.add(delta),
            ...(feeds ? {onData: feeds.onData, onRestart: feeds.onRestart} : {}),
          });
          if (feeds) derived = await feeds.finish();
          await this.publish(temp, descriptor.digest, descriptor.size);
        } catch (error) {
          feeds?.abort();
          throw error;
        } finally {
          await unlink(temp).catch(() => {});
        }
        // verified and in place: what was derived from it is its
        for (const {kind, data} of derived) await this.writeDerived(kind, descriptor.digest, data).catch(() => {});
        this.emit({type: 'blob.fetched', ref: name, digest: descriptor.digest, size: descriptor.size});
        return true;
      });
      this.inflight.set(descriptor.digest, pending);
      const clear = () => this.inflight.delete(descriptor.digest);
      pending.then(clear, clear);
    }
    return pending.then((isNew) => {
      if (isNew) added.add(descriptor.digest);
      return isNew;
    });
  }

  /**
   * After a failed pull or import: removes the blobs it added that nothing else (no
   * reference, no other lease) needs. The caller still owns `lease` and drops it.
   */
  private async discard(added: Set<string>, lease: Lease): Promise<void> {
    if (added.size === 0) return;
    await this.lock.withLock(async () => {
      const keep = await this.keepSet(await this.readIndex(), lease);
      for (const digest of added) {
        if (!keep.has(digest)) await this.deleteBlob(digest);
      }
    });
  }

  /**
   * A stream of a stored blob, compressed as stored; it fails at its end when the bytes do
   * not match the descriptor's digest and size.
   */
  async openBlob(image: ResolvedImage, descriptor: Descriptor): Promise<VerifyingStream> {
    const path = this.blobPath(descriptor.digest);
    const size = await this.blobSize(descriptor.digest);
    if (size === undefined) {
      throw new TskitError(`blob ${descriptor.digest} of image ${image.ref} is missing from the cache ${this.dir}; resolve the image again to pull it`);
    }
    const verifier = new VerifyingStream(descriptor, {ref: image.ref, source: `the cache ${this.dir}`});
    pipeline(createReadStream(path), verifier, () => {});
    return verifier;
  }

  /** A layer as its uncompressed tar stream, diff_id-checked (see openLayer in layer.ts). */
  openLayer(image: ResolvedImage, descriptor: Descriptor): Promise<Readable & AsyncIterable<Buffer>> {
    return openLayer(this, image, descriptor);
  }

  // ---- administration ----------------------------------------------------------------------

  /** Digests reachable from a root that is present: the root, child manifests, configs, layers. */
  async closure(rootDigest: string): Promise<{digests: Set<string>; platforms: string[]}> {
    const digests = new Set<string>([rootDigest]);
    const platforms: string[] = [];
    const visit = async (digest: string, depth: number, platform?: Platform): Promise<void> => {
      if (depth > MAX_INDEX_DEPTH) return;
      let bytes: Buffer;
      try {
        bytes = await readFile(this.blobPath(digest));
      } catch {
        return;
      }
      let json: {mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]};
      try {
        json = JSON.parse(bytes.toString('utf8')) as typeof json;
      } catch {
        return;
      }
      if (isIndexType(json.mediaType, json)) {
        for (const child of json.manifests ?? []) {
          if (typeof child?.digest !== 'string') continue;
          digests.add(child.digest);
          await visit(child.digest, depth + 1, child.platform);
        }
        return;
      }
      if (json.config?.digest) digests.add(json.config.digest);
      for (const layer of json.layers ?? []) if (typeof layer?.digest === 'string') digests.add(layer.digest);
      if (platform && !(platform.os === 'unknown' && platform.architecture === 'unknown')) {
        platforms.push(formatPlatform(platform));
      } else if (!platform && json.config?.digest) {
        try {
          const config = JSON.parse(await readFile(this.blobPath(json.config.digest), 'utf8')) as ImageConfiguration;
          if (config.architecture) platforms.push(formatPlatform({os: config.os || 'linux', architecture: config.architecture, ...(config.variant ? {variant: config.variant} : {})}));
        } catch {
          // config absent
        }
      }
    };
    await visit(rootDigest, 0);
    return {digests, platforms};
  }

  /** Every digest some recorded reference or live lease needs. Call with the lock held. */
  private async keepSet(index: LayoutIndex, except?: Lease): Promise<Set<string>> {
    const keep = await liveLeasedDigests(this.leaseDir, except);
    for (const entry of index.manifests) {
      for (const digest of (await this.closure(entry.digest)).digests) keep.add(digest);
    }
    return keep;
  }

  /** Every blob file: digest -> size. */
  async listBlobs(): Promise<Map<string, number>> {
    const blobs = new Map<string, number>();
    let algorithms: string[];
    try {
      algorithms = await readdir(join(this.dir, 'blobs'));
    } catch {
      return blobs;
    }
    for (const algorithm of algorithms) {
      let names: string[];
      try {
        names = await readdir(join(this.dir, 'blobs', algorithm));
      } catch {
        continue;
      }
      for (const hex of names) {
        try {
          const info = await stat(join(this.dir, 'blobs', algorithm, hex));
          if (info.isFile()) blobs.set(`${algorithm}:${hex}`, info.size);
        } catch {
          // removed meanwhile
        }
      }
    }
    return blobs;
  }

  /** What `tskit cache ls` shows. */
  async list(): Promise<CacheListing> {
    const index = await this.readIndex();
    const blobs = await this.listBlobs();
    const closures = new Map<string, {digests: Set<string>; platforms: string[]}>();
    const users = new Map<string, number>();
    for (const entry of index.manifests) {
      const closure = await this.closure(entry.digest);
      closures.set(entry.digest, closure);
    }
    const named = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION]);
    for (const entry of named) {
      for (const digest of closures.get(entry.digest)!.digests) users.set(digest, (users.get(digest) ?? 0) + 1);
    }
    const images: CachedImage[] = named.map((entry) => {
      const closure = closures.get(entry.digest)!;
      let size = 0;
      let uniqueSize = 0;
      let count = 0;
      for (const digest of closure.digests) {
        const bytes = blobs.get(digest);
        if (bytes === undefined) continue;
        count++;
        size += bytes;
        if (users.get(digest) === 1) uniqueSize += bytes;
      }
      return {
        ref: entry.annotations![REF_NAME_ANNOTATION]!,
        digest: entry.digest,
        mediaType: entry.mediaType,
        platforms: [...new Set(closure.platforms)].sort(),
        size,
        uniqueSize,
        sharedSize: size - uniqueSize,
        blobs: count,
      };
    });
    images.sort((a, b) => a.ref.localeCompare(b.ref));
    const referenced = new Set<string>();
    for (const closure of closures.values()) for (const digest of closure.digests) referenced.add(digest);
    const leased = await liveLeasedDigests(this.leaseDir);
    let totalSize = 0;
    let unusedSize = 0;
    let unusedBlobs = 0;
    for (const [digest, bytes] of blobs) {
      totalSize += bytes;
      if (!referenced.has(digest) && !leased.has(digest)) {
        unusedSize += bytes;
        unusedBlobs++;
      }
    }
    return {dir: this.dir, images, totalSize, blobs: blobs.size, unusedSize, unusedBlobs};
  }

  /**
   * Removes references and the blobs only they needed. Blobs that another reference or a
   * running pull still needs stay (LinuxKit's `cache rm` deletes them; tskit does not).
   * Throws, removing nothing, when a reference is not in the cache.
   */
  async remove(refs: string[]): Promise<RemovalResult> {
    const names = refs.map((r) => formatReference(parseReference(r)));
    return this.lock.withLock(async () => {
      const index = await this.readIndex();
      const recorded = new Set(index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]));
      const absent = names.filter((n) => !recorded.has(n));
      if (absent.length) throw new TskitError(`not in the cache ${this.dir}: ${absent.join(', ')} (see \`tskit cache ls\`)`);
      const removedEntries = index.manifests.filter((m) => names.includes(m.annotations?.[REF_NAME_ANNOTATION] ?? ''));
      const remaining: LayoutIndex = {...index, manifests: index.manifests.filter((m) => !removedEntries.includes(m))};
      const candidates = new Set<string>();
      for (const entry of removedEntries) for (const digest of (await this.closure(entry.digest)).digests) candidates.add(digest);
      const keep = await this.keepSet(remaining);
      // Record the removal first: a crash midway then leaves unused blobs, never dangling references.
      await this.writeIndex(remaining);
      const result: RemovalResult = {removed: [...new Set(names)], deletedBlobs: [], freedBytes: 0, keptBlobs: []};
      for (const digest of candidates) {
        const size = await this.blobSize(digest);
        if (size === undefined) continue;
        if (keep.has(digest)) {
          result.keptBlobs.push(digest);
          continue;
        }
        await this.deleteBlob(digest);
        result.deletedBlobs.push(digest);
        result.freedBytes += size;
      }
      return result;
    });
  }

  /**
   * Empties the cache (every reference), or with `unusedOnly` removes only blobs no
   * reference needs. Blobs leased by running pulls and builds always stay, as do the
   * temp files of live processes.
   */
  async clean(options: {unusedOnly?: boolean} = {}): Promise<RemovalResult> {
    return this.lock.withLock(async () => {
      const index = await this.readIndex();
      const remaining: LayoutIndex = options.unusedOnly ? index : {...index, manifests: []};
      const removed = options.unusedOnly ? [] : index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter((n): n is string => Boolean(n));
      const keep = await this.keepSet(remaining);
      if (!options.unusedOnly && index.manifests.length !== remaining.manifests.length) await this.writeIndex(remaining);
      const result: RemovalResult = {removed, deletedBlobs: [], freedBytes: 0, keptBlobs: []};
      for (const [digest, size] of await this.listBlobs()) {
        if (keep.has(digest)) {
          result.keptBlobs.push(digest);
          continue;
        }
        await this.deleteBlob(digest);
        result.deletedBlobs.push(digest);
        result.freedBytes += size;
      }
      await this.sweepDead();
      return result;
    });
  }

  /**
   * Removes what processes that are gone left in the cache: their temp files in ingest/ and
   * their leases (a pull killed with SIGKILL, say). Only this host's: a cache on shared
   * storage may serve live processes elsewhere. Returns the paths removed (or, with
   * `dryRun`, that would be).
   */
  async sweepDead(options: {dryRun?: boolean} = {}): Promise<string[]> {
    const removed: string[] = [];
    const me = currentProcess();
    const take = async (path: string) => {
      if (!options.dryRun) await unlink(path).catch(() => {});
      removed.push(path);
    };
    for (const name of await readdir(this.ingestDir).catch(() => [] as string[])) {
      const owner = /^(\d+)-(?:([0-9a-f]{8})-)?[0-9a-f]{12}$/.exec(name);
      if (!owner || (owner[2] !== undefined && owner[2] !== HOST_TAG)) continue;
      const pid = Number(owner[1]);
      if (pid === me.pid || isAlive({host: me.host, pid})) continue;
      await take(join(this.ingestDir, name));
    }
    for (const path of await deadLeases(this.leaseDir)) await take(path);
    return removed;
  }

  /**
   * Re-hashes stored blobs (all, or those of `refs`), reporting damaged ones; with `repair`
   * they are deleted so the next resolve pulls them again.
   */
  async verify(options: {refs?: string[]; repair?: boolean; onBlob?: (digest: string, ok: boolean) => void} = {}): Promise<VerifyResult> {
    let digests: string[];
    if (options.refs?.length) {
      const set = new Set<string>();
      for (const ref of options.refs) {
        const name = formatReference(parseReference(ref));
        const entry = await this.findRef(name);
        if (!entry) throw new TskitError(`${name} is not in the cache ${this.dir}`);
        for (const digest of (await this.closure(entry.digest)).digests) set.add(digest);
      }
      digests = [...set];
    } else {
      digests = [...(await this.listBlobs()).keys()];
    }
    const result: VerifyResult = {checked: 0, corrupt: [], removed: []};
    for (const digest of digests) {
      const size = await this.blobSize(digest);
      if (size === undefined) continue;
      result.checked++;
      const ok = await this.blobMatches(digest, size);
      options.onBlob?.(digest, ok);
      if (ok) continue;
      result.corrupt.push(digest);
      if (options.repair) {
        await this.deleteBlob(digest);
        result.removed.push(digest);
      }
    }
    return result;
  }

  private async blobMatches(digest: string, size: number): Promise<boolean> {
    const verifier = new VerifyingStream({digest, size}, {ref: '(cache verify)', source: this.dir});
    try {
      await new Promise<void>((resolve, reject) => {
        pipeline(createReadStream(this.blobPath(digest)), verifier, (error) => (error ? reject(error) : resolve()));
        verifier.resume();
      });
      return true;
    } catch (error) {
      if (error instanceof BlobVerificationError) return false;
      throw error;
    }
  }

  // ---- for import, export and push ------------------------------------------------------------

  /** A lease for work outside resolve (import, export, push); release it with releaseLease. */
  async acquireLease(digests: string[] = []): Promise<Lease> {
    const lease = this.newLease();
    if (digests.length) await this.hold(lease, digests);
    return lease;
  }

  async extendLease(lease: Lease, digests: string[]): Promise<void> {
    await this.hold(lease, digests);
  }

  async releaseLease(lease: Lease): Promise<void> {
    await this.dropLease(lease);
  }

  /** Undoes a failed import: removes blobs it added that nothing else needs, and drops its lease. */
  async abandon(added: Set<string>, lease: Lease): Promise<void> {
    try {
      await this.discard(added, lease);
    } finally {
      await this.dropLease(lease);
    }
  }

  /**
   * Moves a temp file (from ingestTempPath) whose bytes were verified against `digest` and
   * `size` into place; returns true when the blob is new.
   */
  commitTemp(temp: string, digest: string, size: number): Promise<boolean> {
    return this.publish(temp, digest, size);
  }

  /** A temp path in the cache's ingest directory (same filesystem, so rename is atomic). */
  async ingestTempPath(): Promise<string> {
    await this.ensureLayout();
    return this.ingestPath();
  }

  /** A stored small blob's bytes, digest-checked; undefined when absent. */
  async readBlobBytes(digest: string, size?: number): Promise<Buffer | undefined> {
    return this.readSmallBlob(digest, size);
  }

  /** Stores small verified bytes; true when new. */
  async writeBlobBytes(bytes: Buffer, digest = digestOf(bytes)): Promise<boolean> {
    if (digestOf(bytes, parseDigest(digest).algorithm) !== digest) throw new TskitError(`bytes do not match digest ${digest}`);
    return this.storeBytes(digest, bytes);
  }
}

/** Opens a cache with options from flags/env, for commands. */
export function openCache(options: Omit<ImageCacheOptions, 'dir'> & {dir?: string}): ImageCache {
  return new ImageCache({...options, dir: resolveCacheDir(options.dir)});
}
