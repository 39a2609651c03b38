// Pulling into the cache from a real registry (Debian's docker-registry, distribution 2.8.2)
// with images pushed by skopeo: OCI and Docker schema 2, indexes and single manifests, by
// tag and by digest, platform selection, verification, and what a warm cache asks of the
// network (nothing).
import {execFile} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../src/errors.ts';
import type {TskitEvent} from '../../src/events.ts';
import {ImageCache} from '../../src/oci/cache.ts';
import {parseMirrors} from '../../src/oci/endpoints.ts';
import {platformForArch} from '../../src/oci/platform.ts';
import {openLayer} from '../../src/oci/layer.ts';
import {MediaTypes, type BlobDeriver, type ResolvedImage} from '../../src/oci/types.ts';
import {encodeLayerIndex, LAYER_INDEX_KIND, layerHeader, layerIndexDeriver} from '../../src/build/layer-index.ts';
import {readTar} from '../../src/build/tar/reader.ts';
import {blobDigests, imageFiles, indexRefs, leftovers} from '../support/oci-cache-helpers.ts';
import {pushLayout, registryBlobPath, sha256, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {startCountingProxy, type CountingProxy} from '../support/oci-proxy.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const run = promisify(execFile);
let registry: RunningRegistry;
let work: string;
let multi: WrittenLayout;
let single: WrittenLayout;
let multiDigest: string;
let multiDockerDigest: string;

const amd64 = platformForArch('amd64');
const arm64 = platformForArch('arm64');
const riscv64 = platformForArch('riscv64');

async function freshCache(options: Partial<ConstructorParameters<typeof ImageCache>[0]> = {}): Promise<ImageCache> {
  return new ImageCache({dir: await mkdtemp(join(work, 'cache-')), ...options});
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-pull-'));
  multi = await writeOciLayout(join(work, 'multi'), 'v1', [
    {architecture: 'amd64', layers: [{'etc/base': 'base'}, {'etc/arch': 'amd64'}]},
    {architecture: 'arm64', variant: 'v8', variantInIndexOnly: true, layers: [{'etc/base': 'base'}, {'etc/arch': 'arm64'}], compression: 'zstd'},
    // (skopeo would compress an uncompressed layer on push; the cache-import tests cover those.)
    {architecture: 'riscv64', layers: [{'etc/base': 'base'}, {'etc/arch': 'riscv64'}]},
  ]);
  single = await writeOciLayout(join(work, 'single'), 'v1', {architecture: 'amd64', layers: [{'bin/tool': 'tool v1'}, {'etc/conf': 'conf'}]});
  multiDigest = await pushLayout(multi, registry.host, 'test/multi:v1');
  // Docker schema 2 has no zstd layers: the same platforms, gzip'd.
  const multiForDocker = await writeOciLayout(join(work, 'multi-docker'), 'v1', [
    {architecture: 'amd64', layers: [{'etc/base': 'base'}, {'etc/arch': 'amd64'}]},
    {architecture: 'arm64', variant: 'v8', layers: [{'etc/base': 'base'}, {'etc/arch': 'arm64'}]},
  ]);
  multiDockerDigest = await pushLayout(multiForDocker, registry.host, 'test/multi-docker:v1', {format: 'v2s2'});
  await pushLayout(single, registry.host, 'test/single:v1');
  await pushLayout(single, registry.host, 'test/single-docker:v1', {format: 'v2s2'});
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('pull from a real registry', () => {
  it('pulls an OCI index by tag and picks amd64, arm64 (v8 in the index only) and riscv64', async () => {
    const events: TskitEvent[] = [];
    const cache = await freshCache({emit: (e) => events.push(e)});
    const ref = `${registry.host}/test/multi:v1`;
    for (const [platform, i, arch] of [[amd64, 0, 'amd64'], [arm64, 1, 'arm64'], [riscv64, 2, 'riscv64']] as const) {
      const image = await cache.resolve(ref, platform);
      expect(image.ref).toBe(ref);
      expect(image.indexDigest).toBe(multiDigest);
      expect(image.digest).toBe(multi.images[i]!.manifest.digest);
      expect(image.config.architecture).toBe(arch);
      expect(await imageFiles(cache, image)).toEqual({'etc/base': 'base', 'etc/arch': arch});
    }
    expect(await indexRefs(cache.dir)).toEqual({[ref]: multiDigest});
    const resolved = events.filter((e) => e.type === 'image.resolved');
    expect(resolved.map((e) => e.type === 'image.resolved' && e.platform)).toEqual(['linux/amd64', 'linux/arm64', 'linux/riscv64']);
    expect(events.some((e) => e.type === 'blob.fetched')).toBe(true);
    await cache.close();
    // The cache is an OCI layout other tools read: skopeo copies the riscv64 image out of it.
    const out = join(work, 'copied-out');
    await run('skopeo', ['copy', '--quiet', '--override-arch', 'riscv64', `oci:${cache.dir}:${ref}`, `dir:${out}`]);
    expect(sha256(await readFile(join(out, 'manifest.json')))).toBe(multi.images[2]!.manifest.digest);
    expect((await leftovers(cache.dir)).leases).toEqual([]);
  });

  it('pulls by digest (index and platform manifest) and verifies it', async () => {
    const cache = await freshCache();
    const byIndex = await cache.resolve(`${registry.host}/test/multi@${multiDigest}`, arm64);
    expect(byIndex.digest).toBe(multi.images[1]!.manifest.digest);
    const manifestDigest = multi.images[2]!.manifest.digest;
    const byManifest = await cache.resolve(`${registry.host}/test/multi:v1@${manifestDigest}`, riscv64);
    expect(byManifest.digest).toBe(manifestDigest);
    expect(byManifest.indexDigest).toBeUndefined();
    expect(await indexRefs(cache.dir)).toEqual({
      [`${registry.host}/test/multi@${multiDigest}`]: multiDigest,
      [`${registry.host}/test/multi:v1@${manifestDigest}`]: manifestDigest,
    });
    // A digest the registry does not have: 404 names the image and registry.
    const missing = `sha256:${'0'.repeat(64)}`;
    await expect(cache.resolve(`${registry.host}/test/multi@${missing}`, amd64)).rejects.toThrow(
      `image ${registry.host}/test/multi@${missing} not found at ${registry.host}`,
    );
    await cache.close();
  });

  it('pulls Docker schema 2 manifest lists and manifests', async () => {
    const cache = await freshCache();
    const list = await cache.resolve(`${registry.host}/test/multi-docker:v1`, arm64);
    expect(list.indexDigest).toBe(multiDockerDigest);
    expect(list.manifest.mediaType).toBe(MediaTypes.dockerManifest);
    expect(await imageFiles(cache, list)).toEqual({'etc/base': 'base', 'etc/arch': 'arm64'});
    const one = await cache.resolve(`${registry.host}/test/single-docker:v1`, amd64);
    expect(one.indexDigest).toBeUndefined();
    expect(one.manifest.mediaType).toBe(MediaTypes.dockerManifest);
    expect(await imageFiles(cache, one)).toEqual({'bin/tool': 'tool v1', 'etc/conf': 'conf'});
    const index = JSON.parse(await readFile(join(cache.dir, 'index.json'), 'utf8')) as {manifests: Array<{mediaType: string}>};
    expect(index.manifests.map((m) => m.mediaType).sort()).toEqual([MediaTypes.dockerManifestList, MediaTypes.dockerManifest].sort());
    await cache.close();
  });

  it('fails for a platform the index lacks, naming what it has, and leaves nothing in the cache', async () => {
    const two = await writeOciLayout(join(work, 'two'), 'v1', [
      {architecture: 'amd64', layers: [{a: '1'}]},
      {architecture: 'arm64', variant: 'v8', layers: [{a: '2'}]},
    ]);
    await pushLayout(two, registry.host, 'test/two:v1');
    const cache = await freshCache();
    const error = await cache.resolve(`${registry.host}/test/two:v1`, riscv64).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toBe(`image ${registry.host}/test/two:v1 has no linux/riscv64 image: its index offers linux/amd64, linux/arm64/v8`);
    expect(await indexRefs(cache.dir)).toEqual({});
    expect(await blobDigests(cache.dir)).toEqual([]);
    await cache.close();
  });

  it('accepts a single-platform image only for its architecture', async () => {
    const cache = await freshCache();
    await expect(cache.resolve(`${registry.host}/test/single:v1`, arm64)).rejects.toThrow(
      `image ${registry.host}/test/single:v1 is a single-platform image for linux/amd64, not linux/arm64`,
    );
    expect(await blobDigests(cache.dir)).toEqual([]);
    const image = await cache.resolve(`${registry.host}/test/single:v1`, platformForArch('x86_64'));
    expect(image.digest).toBe(single.images[0]!.manifest.digest);
    // A layer's digest is no image, whether the cache has the layer or not.
    const layer = single.images[0]!.layers[0]!.digest;
    await expect(cache.resolve(`${registry.host}/test/single@${layer}`, amd64)).rejects.toThrow(TskitError);
    await expect(cache.resolve(`${registry.host}/test/single@${layer}`, amd64)).rejects.toThrow(/is not JSON/);
    // (distribution answers 500 when asked for a blob as a manifest)
    const empty = await freshCache({registry: {retry: {attempts: 1}}});
    await expect(empty.resolve(`${registry.host}/test/single@${layer}`, amd64)).rejects.toThrow(`manifest ${layer} of ${registry.host}/test/single@${layer}`);
    await empty.close();
    await cache.close();
  });

  it('rejects a blob tampered with in the registry storage, naming image and digest, and keeps nothing', async () => {
    const tampered = await writeOciLayout(join(work, 'tampered'), 'v1', {architecture: 'amd64', layers: [{'etc/ok': 'fine'}, {'data/blob': randomBytes(50_000)}]});
    await pushLayout(tampered, registry.host, 'test/tampered:v1');
    const layer = tampered.images[0]!.layers[1]!;
    const path = registryBlobPath(registry.storageDir, layer.digest);
    const original = await readFile(path);
    const evil = Buffer.from(original);
    evil[evil.length - 100] = evil[evil.length - 100]! ^ 0xff;
    await writeFile(path, evil);
    try {
      const cache = await freshCache();
      const ref = `${registry.host}/test/tampered:v1`;
      const error = await cache.resolve(ref, amd64).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TskitError);
      expect((error as Error).message).toContain(`blob ${layer.digest} of image ${ref}`);
      expect((error as Error).message).toContain('failed verification');
      expect(await indexRefs(cache.dir)).toEqual({});
      expect(await blobDigests(cache.dir)).toEqual([]);
      expect((await leftovers(cache.dir)).ingest).toEqual([]);
      await cache.close();
    } finally {
      await writeFile(path, original);
    }
  });

  it('resumes a blob download cut mid-way with a Range request', async () => {
    const big = await writeOciLayout(join(work, 'big'), 'v1', {architecture: 'amd64', layers: [{'data/random': randomBytes(400_000)}]});
    await pushLayout(big, registry.host, 'test/big:v1');
    const proxy = await startCountingProxy(registry.host);
    try {
      const layer = big.images[0]!.layers[0]!;
      proxy.breakOnce((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), 100_000);
      const cache = await freshCache({registry: {mirrors: parseMirrors([`${registry.host}=http://${proxy.host}`])}});
      const image = await cache.resolve(`${registry.host}/test/big:v1`, amd64);
      const blobGets = proxy.requests.filter((r) => r.path.endsWith(`/blobs/${layer.digest}`));
      expect(blobGets).toHaveLength(2);
      expect(blobGets[1]!.headers.range).toMatch(/^bytes=\d+-$/);
      expect(Number(/\d+/.exec(String(blobGets[1]!.headers.range))![0])).toBeGreaterThan(0);
      expect((await stat(cache.blobPath(layer.digest))).size).toBe(layer.size);
      expect(image.layers[0]!.digest).toBe(layer.digest);
      expect((await cache.verify()).corrupt).toEqual([]);
      await cache.close();
      // a build's cache indexes the layer as it downloads: the resumed bytes continue the index
      proxy.breakOnce((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), 100_000);
      const indexing = await freshCache({registry: {mirrors: parseMirrors([`${registry.host}=http://${proxy.host}`])}, derivers: [layerIndexDeriver]});
      const again = await indexing.resolve(`${registry.host}/test/big:v1`, amd64);
      expect(await indexing.readDerived(LAYER_INDEX_KIND, layer.digest)).toEqual(await indexByReading(indexing, again, 0));
      await indexing.close();
    } finally {
      await proxy.stop();
    }
  });
});

/** The layer index a build computes when none was saved: the layer read back from the cache. */
async function indexByReading(cache: ImageCache, image: ResolvedImage, layer: number): Promise<Buffer> {
  const headers = [];
  for await (const entry of readTar(await openLayer(cache, image, image.layers[layer]!), 'test')) headers.push(layerHeader(entry));
  return encodeLayerIndex(headers);
}

describe('deriving while downloading', () => {
  it('indexes gzip and zstd layers as they arrive: the saved index is what reading the layer gives', async () => {
    const cache = await freshCache({derivers: [layerIndexDeriver]});
    for (const platform of [amd64, arm64]) {
      const image = await cache.resolve(`${registry.host}/test/multi:v1`, platform);
      expect(image.layers.map((l) => l.mediaType)).toContain(platform === arm64 ? MediaTypes.ociLayerZstd : MediaTypes.ociLayerGzip);
      for (let i = 0; i < image.layers.length; i++) {
        const saved = await cache.readDerived(LAYER_INDEX_KIND, image.layers[i]!.digest);
        expect(saved, `layer ${i} of ${platform.architecture}`).toBeDefined();
        expect(saved).toEqual(await indexByReading(cache, image, i));
      }
    }
    await cache.close();
  });

  it('a deriver that fails, or stops reading early, costs the pull nothing and stores nothing', async () => {
    const failing: BlobDeriver = {kind: 'test-failing', applies: () => true, derive: async () => { throw new Error('no'); }};
    const quitter: BlobDeriver = {
      kind: 'test-quitter',
      applies: () => true,
      async derive(bytes) {
        for await (const chunk of bytes) return chunk.length > 0 ? undefined : Buffer.from('x'); // leaves after one chunk
        return undefined;
      },
    };
    const big = await writeOciLayout(join(work, 'big-derive'), 'v1', {architecture: 'amd64', layers: [{'data/random': randomBytes(6_000_000)}]});
    await pushLayout(big, registry.host, 'test/big-derive:v1');
    const cache = await freshCache({derivers: [failing, quitter, layerIndexDeriver]});
    const image = await cache.resolve(`${registry.host}/test/big-derive:v1`, amd64);
    const digest = image.layers[0]!.digest;
    expect((await stat(cache.blobPath(digest))).size).toBe(image.layers[0]!.size);
    expect(await cache.readDerived('test-failing', digest)).toBeUndefined();
    expect(await cache.readDerived('test-quitter', digest)).toBeUndefined();
    expect(await cache.readDerived(LAYER_INDEX_KIND, digest)).toEqual(await indexByReading(cache, image, 0));
    await cache.close();
  });
});

describe('a warm cache and the network', () => {
  let proxy: CountingProxy;
  beforeAll(async () => {
    proxy = await startCountingProxy(registry.host);
    // The proxy is a registry host of its own, so references name it.
    await pushLayout(multi, proxy.host, 'warm/multi:v1');
  });
  afterAll(async () => proxy?.stop());

  it('makes no registry request for a digest-pinned reference already cached, even with the registry gone', async () => {
    const own = await startCountingProxy(registry.host);
    try {
      const dir = await mkdtemp(join(work, 'warm-'));
      const ref = `${own.host}/warm/multi@${multiDigest}`;
      const cold = new ImageCache({dir});
      const first = await cold.resolve(ref, arm64);
      await cold.close();
      expect(own.requests.length).toBeGreaterThan(0);

      const requests = own.requests.length;
      const connections = own.connections;
      const events: TskitEvent[] = [];
      // pull: true changes nothing for a pinned reference: its content cannot change.
      const warm = new ImageCache({dir, emit: (e) => events.push(e), pull: true});
      const again = await warm.resolve(ref, arm64);
      expect(again).toEqual(first);
      expect(await imageFiles(warm, again)).toEqual({'etc/base': 'base', 'etc/arch': 'arm64'});
      await warm.close();
      expect(own.requests.length).toBe(requests);
      expect(own.connections).toBe(connections);
      expect(events).toContainEqual({type: 'image.resolved', ref, digest: first.digest, platform: 'linux/arm64', fromCache: true});

      // With nothing listening at all, it still resolves.
      await own.stop();
      const offline = new ImageCache({dir, registry: {retry: {attempts: 1}}});
      expect((await offline.resolve(ref, arm64)).digest).toBe(first.digest);
      await offline.close();
    } finally {
      await own.stop().catch(() => {});
    }
  });

  it('uses a cached tag without asking the registry, and asks again only with pull', async () => {
    const dir = await mkdtemp(join(work, 'tag-'));
    const ref = `${proxy.host}/warm/multi:v1`;
    const cold = new ImageCache({dir});
    await cold.resolve(ref, amd64);
    await cold.close();

    const before = proxy.requests.length;
    const warm = new ImageCache({dir});
    await warm.resolve(ref, amd64);
    await warm.close();
    expect(proxy.requests.length).toBe(before);

    const pulling = new ImageCache({dir, pull: true});
    await pulling.resolve(ref, amd64);
    await pulling.close();
    const made = proxy.requests.slice(before);
    expect(made.some((r) => r.method === 'GET' && r.path.endsWith('/manifests/v1'))).toBe(true);
    // Content-addressed blobs already cached are not fetched again.
    expect(made.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
  });

  it('keeps a cached tag until pull, then follows where the tag moved', async () => {
    const dir = await mkdtemp(join(work, 'moved-'));
    const v1 = await writeOciLayout(join(work, 'moved1'), 't', {architecture: 'amd64', layers: [{f: 'one'}]});
    const v2 = await writeOciLayout(join(work, 'moved2'), 't', {architecture: 'amd64', layers: [{f: 'two'}]});
    await pushLayout(v1, registry.host, 'test/moving:t');
    const ref = `${registry.host}/test/moving:t`;
    const cache = new ImageCache({dir});
    expect((await cache.resolve(ref, amd64)).digest).toBe(v1.images[0]!.manifest.digest);
    await cache.close();
    await pushLayout(v2, registry.host, 'test/moving:t');
    const stale = new ImageCache({dir});
    expect((await stale.resolve(ref, amd64)).digest).toBe(v1.images[0]!.manifest.digest);
    expect((await stale.resolve(ref, amd64, {pull: true})).digest).toBe(v2.images[0]!.manifest.digest);
    expect(await imageFiles(stale, await stale.resolve(ref, amd64, {pull: true}))).toEqual({f: 'two'});
    await stale.close();
    expect(await indexRefs(dir)).toEqual({[ref]: v2.images[0]!.manifest.digest});
  });

  it('pulls through mirrors: one per registry, a catch-all, and a docker.io mirror with a path prefix', async () => {
    await pushLayout(multi, registry.host, 'prefix/library/alpine:3.20');
    const cases: Array<{mirrors: string[]; ref: string}> = [
      {mirrors: [`registry.invalid:5000=http://${registry.host}`], ref: 'registry.invalid:5000/test/multi:v1'},
      {mirrors: [`http://${registry.host}`], ref: 'other.invalid/test/multi:v1'},
      {mirrors: [`docker.io=http://${registry.host}/prefix/`], ref: 'alpine:3.20'},
      {mirrors: [`index.docker.io=http://${registry.host}/prefix`], ref: 'docker.io/library/alpine:3.20'},
    ];
    for (const {mirrors, ref} of cases) {
      const cache = await freshCache({registry: {mirrors: parseMirrors(mirrors)}});
      const image = await cache.resolve(ref, riscv64);
      expect(image.digest).toBe(multi.images[2]!.manifest.digest);
      await cache.close();
    }
  });
});
