// Test material: reading back what the cache holds (layer file listings, blob files, the
// index), to assert on real outcomes.
import {readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import type {ImageCache} from '../../src/oci/cache.ts';
import {openLayer} from '../../src/oci/layer.ts';
import {readTarMembers} from '../../src/oci/layout-tar.ts';
import type {Descriptor, ResolvedImage} from '../../src/oci/types.ts';

/** The regular files of a layer, path -> content. */
export async function layerFiles(cache: ImageCache, image: ResolvedImage, layer: Descriptor): Promise<Record<string, string>> {
  const stream = await openLayer(cache, image, layer);
  const files: Record<string, string> = {};
  for await (const member of readTarMembers(stream)) {
    const chunks: Buffer[] = [];
    for await (const chunk of member.content) chunks.push(chunk);
    if (member.type === 'file') files[member.name] = Buffer.concat(chunks).toString('utf8');
  }
  return files;
}

/** All files of all layers, upper layers overriding lower ones. */
export async function imageFiles(cache: ImageCache, image: ResolvedImage): Promise<Record<string, string>> {
  let files: Record<string, string> = {};
  for (const layer of image.layers) files = {...files, ...(await layerFiles(cache, image, layer))};
  return files;
}

export async function blobDigests(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`).sort();
  } catch {
    return [];
  }
}

export async function indexRefs(dir: string): Promise<Record<string, string>> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {manifests: Descriptor[]};
    return Object.fromEntries(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'] ?? '', m.digest]));
  } catch {
    return {};
  }
}

export async function leftovers(dir: string): Promise<{ingest: string[]; leases: string[]; lock: boolean}> {
  const list = async (sub: string) => {
    try {
      return await readdir(join(dir, '.tskit', sub));
    } catch {
      return [];
    }
  };
  const state = await list('');
  return {ingest: await list('ingest'), leases: await list('leases'), lock: state.includes('lock')};
}
