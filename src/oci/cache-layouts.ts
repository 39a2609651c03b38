// The cache as a LayoutSource: a cached image written out as an OCI layout tar, the way
// LinuxKit puts `format: oci` volumes into an image (index as root, chosen platforms' blobs).
import {PassThrough} from 'node:stream';
import {TskitError} from '../errors.ts';
import type {ImageCache} from './cache.ts';
import {exportImage} from './cache-transfer.ts';
import {parseJsonBlob} from './json-blob.ts';
import {formatReference, parseReference} from './reference.ts';
import type {Descriptor, LayoutSource, Platform} from './types.ts';

export function cacheLayoutSource(cache: ImageCache): LayoutSource {
  return {
    async platforms(ref) {
      const parsed = parseReference(ref);
      const name = formatReference(parsed);
      const root = (await cache.findRef(name))?.digest ?? parsed.digest;
      const bytes = root ? await cache.readBlobBytes(root) : undefined;
      if (!bytes) throw new TskitError(`${name} is not in the cache: resolve it first`);
      const json = parseJsonBlob<{manifests?: Descriptor[]}>(bytes, `${root} of ${name}`);
      // attestation manifests (unknown/unknown) are not images anyone runs
      return (json.manifests ?? []).flatMap((m) => (m.platform && m.platform.os !== 'unknown' ? [m.platform] : []));
    },
    layoutTar(ref, platforms: Platform[]) {
      const out = new PassThrough();
      // the export ends the stream itself when it is done
      exportImage(cache, ref, out, platforms.length > 0 ? {platforms} : {}).catch((error: unknown) => out.destroy(error as Error));
      return out;
    },
  };
}
