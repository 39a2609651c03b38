// Pushing a cached image to a registry (LinuxKit's `cache push`): blobs first (skipped when
// the repository has them, mounted across repositories on the same registry, else uploaded
// in chunks straight from the cache files), then child manifests by digest, then the root
// under the target tag.
import {createReadStream} from 'node:fs';
import {Readable} from 'node:stream';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import type {ImageCache} from './cache.ts';
import {formatPlatform, selectManifest} from './platform.ts';
import {formatReference, parseReference, repositoryName, type ImageReference} from './reference.ts';
import type {BlobSource, RegistryClient, UploadOutcome} from './registry.ts';
import {MediaTypes, type Descriptor, type ImageIndex, type Platform} from './types.ts';
import {parseJsonBlob} from './json-blob.ts';

export interface PushOptions {
  /** For an index: push only this platform's image under the target tag. */
  platform?: Platform;
  /** Bytes per upload chunk (default 16 MiB); `monolithic` sends each blob in one PUT. */
  chunkSize?: number;
  monolithic?: boolean;
  /** Try cross-repository mounts when source and target share a registry (default true). */
  mount?: boolean;
  emit?: Emit;
}

export interface PushResult {
  ref: string;
  digest: string;
  mediaType: string;
  blobs: Record<UploadOutcome, number>;
}

function fileSource(path: string): BlobSource {
  return {
    open(start: number, end: number): Readable {
      if (end <= start) return Readable.from([], {objectMode: false});
      return createReadStream(path, {start, end: end - 1});
    },
  };
}

const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

/** Pushes `source` (a reference in the cache) to `target`; returns the pushed root's digest. */
export async function pushImage(cache: ImageCache, client: RegistryClient, source: string, target: string, options: PushOptions = {}): Promise<PushResult> {
  const emit = options.emit ?? ignoreEvents;
  const sourceRef = parseReference(source);
  const name = formatReference(sourceRef);
  const targetRef = parseReference(target);
  if (targetRef.digest && !targetRef.tag) throw new TskitError(`push target ${target} needs a tag, not only a digest`);
  const entry = (await cache.findRef(name)) ?? (sourceRef.digest ? {mediaType: '', digest: sourceRef.digest, size: (await cache.blobSize(sourceRef.digest)) ?? -1} : undefined);
  if (!entry || entry.size < 0) throw new TskitError(`${name} is not in the cache ${cache.dir}`);
  const lease = await cache.acquireLease([entry.digest]);
  try {
    const rootBytes = await cache.readBlobBytes(entry.digest);
    if (!rootBytes) throw new TskitError(`the root blob ${entry.digest} of ${name} is missing from the cache`);
    const rootJson = parseJsonBlob<{mediaType?: string; manifests?: Descriptor[]}>(rootBytes, `${entry.digest} of ${name}`);
    const rootType = rootJson.mediaType || entry.mediaType || (Array.isArray(rootJson.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest);
    const mountFrom: ImageReference | undefined =
      options.mount !== false && sourceRef.domain === targetRef.domain && repositoryName(sourceRef) !== repositoryName(targetRef) ? sourceRef : undefined;
    const counts: Record<UploadOutcome, number> = {exists: 0, mounted: 0, uploaded: 0};

    const pushManifest = async (descriptor: Descriptor, bytes: Buffer, what: string, asRoot: boolean): Promise<string> => {
      const json = parseJsonBlob<{config: Descriptor; layers: Descriptor[]}>(bytes, `manifest ${descriptor.digest} of ${what}`);
      if (!json.config || !Array.isArray(json.layers)) throw new TskitError(`${descriptor.digest} of ${what} is not an image manifest`);
      const parts = [json.config, ...json.layers];
      await cache.extendLease(lease, parts.map((p) => p.digest));
      for (const part of parts) {
        if (!(await cache.hasBlob(part))) throw new TskitError(`${what}: blob ${part.digest} is not in the cache; pull the image again`);
      }
      const done = new Set<string>();
      for (const part of parts) {
        if (done.has(part.digest)) continue;
        done.add(part.digest);
        const outcome = await client.uploadBlob(targetRef, part, fileSource(cache.blobPath(part.digest)), {
          ...(options.chunkSize !== undefined ? {chunkSize: options.chunkSize} : {}),
          ...(options.monolithic ? {monolithic: true} : {}),
          ...(mountFrom ? {mountFrom} : {}),
        });
        counts[outcome]++;
        emit({type: 'log', level: 'debug', message: `${formatReference(targetRef)}: blob ${part.digest} ${outcome}`});
      }
      const at: ImageReference = asRoot ? targetRef : {domain: targetRef.domain, path: targetRef.path, digest: descriptor.digest};
      return client.putManifest(at, bytes, descriptor.mediaType);
    };

    let pushed: {digest: string; mediaType: string};
    if (INDEX_TYPES.has(rootType)) {
      const index = rootJson as ImageIndex;
      if (options.platform) {
        const chosen = selectManifest(index, options.platform, name);
        await cache.extendLease(lease, [chosen.digest]);
        const bytes = await cache.readBlobBytes(chosen.digest, chosen.size);
        if (!bytes) throw new TskitError(`${name} for ${formatPlatform(options.platform)} is not in the cache`);
        const digest = await pushManifest(chosen, bytes, `${name} ${formatPlatform(options.platform)}`, true);
        pushed = {digest, mediaType: chosen.mediaType};
      } else {
        const children: Array<{descriptor: Descriptor; bytes: Buffer}> = [];
        const missing: string[] = [];
        await cache.extendLease(lease, index.manifests.map((m) => m.digest));
        for (const child of index.manifests) {
          const bytes = await cache.readBlobBytes(child.digest, child.size);
          if (bytes) children.push({descriptor: child, bytes});
          else missing.push(child.platform ? formatPlatform(child.platform) : child.digest);
        }
        if (missing.length) {
          throw new TskitError(`cannot push all of ${name}: the cache lacks ${missing.join(', ')}; pull them first, or push one platform`);
        }
        for (const child of children) {
          await pushManifest(child.descriptor, child.bytes, `${name} ${child.descriptor.platform ? formatPlatform(child.descriptor.platform) : child.descriptor.digest}`, false);
        }
        const digest = await client.putManifest(targetRef, rootBytes, rootType);
        pushed = {digest, mediaType: rootType};
      }
    } else {
      const digest = await pushManifest({mediaType: rootType, digest: entry.digest, size: rootBytes.length}, rootBytes, name, true);
      pushed = {digest, mediaType: rootType};
    }
    emit({type: 'log', level: 'info', message: `pushed ${name} to ${formatReference(targetRef)} as ${pushed.digest}`});
    return {ref: formatReference(targetRef), ...pushed, blobs: counts};
  } finally {
    await cache.releaseLease(lease);
  }
}
