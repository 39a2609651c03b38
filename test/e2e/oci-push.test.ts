// Pushing from the cache to the real docker-registry: chunked uploads (POST, PATCH with
// Content-Range, PUT ?digest=), the monolithic fallback (POST then one PUT), cross-repository
// mounts, and whole indexes; every result is pulled back with skopeo, which verifies digests.
import {execFile} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ImageCache} from '../../src/oci/cache.ts';
import {parseMirrors} from '../../src/oci/endpoints.ts';
import {platformForArch} from '../../src/oci/platform.ts';
import {pushImage} from '../../src/oci/push.ts';
import {RegistryClient} from '../../src/oci/registry.ts';
import {inspectDigest, pushLayout, sha256, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {startCountingProxy, type CountingProxy} from '../support/oci-proxy.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const run = promisify(execFile);
let registry: RunningRegistry;
let proxy: CountingProxy;
let work: string;
let cache: ImageCache;
let single: WrittenLayout;
let multi: WrittenLayout;
let multiDigest: string;
const amd64 = platformForArch('amd64');

/** A client whose requests for the registry go through the counting proxy (same registry name). */
function proxiedClient(): RegistryClient {
  return new RegistryClient({mirrors: parseMirrors([`${registry.host}=http://${proxy.host}`])});
}

/** Pulls host/repo:tag back with skopeo (which checks every digest) and returns the manifest digest it copied. */
async function pullBack(repoTag: string): Promise<{digest: string; layers: Buffer[]}> {
  const out = await mkdtemp(join(work, 'back-'));
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--override-arch', 'amd64', `docker://${registry.host}/${repoTag}`, `dir:${out}`]);
  const manifest = await readFile(join(out, 'manifest.json'));
  const parsed = JSON.parse(manifest.toString('utf8')) as {layers: Array<{digest: string}>};
  const layers = await Promise.all(parsed.layers.map((l) => readFile(join(out, l.digest.slice(7)))));
  return {digest: sha256(manifest), layers};
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startCountingProxy(registry.host);
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-push-'));
  single = await writeOciLayout(join(work, 'single'), 'v1', {
    architecture: 'amd64',
    layers: [{'data/random': randomBytes(300_000)}, {'etc/small': 'small'}],
  });
  multi = await writeOciLayout(join(work, 'multi'), 'v1', [
    {architecture: 'amd64', layers: [{'etc/arch': 'amd64'}]},
    {architecture: 'arm64', variant: 'v8', layers: [{'etc/arch': 'arm64'}]},
  ]);
  await pushLayout(single, registry.host, 'src/app:v1');
  multiDigest = await pushLayout(multi, registry.host, 'src/multi:v1');
  cache = new ImageCache({dir: await mkdtemp(join(work, 'cache-'))});
  await cache.resolve(`${registry.host}/src/app:v1`, amd64);
  await cache.resolve(`${registry.host}/src/multi:v1`, amd64);
  await cache.resolve(`${registry.host}/src/multi:v1`, platformForArch('arm64'));
}, 120_000);

afterAll(async () => {
  await cache?.close();
  await proxy?.stop();
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('push from the cache', () => {
  it('uploads blobs in chunks (PATCH with Content-Range) and PUTs the manifest', async () => {
    const client = proxiedClient();
    const before = proxy.requests.length;
    const result = await pushImage(cache, client, `${registry.host}/src/app:v1`, `${registry.host}/chunked/app:v1`, {chunkSize: 64 * 1024, mount: false});
    await client.close();
    expect(result.digest).toBe(single.images[0]!.manifest.digest);
    expect(result.blobs).toEqual({exists: 0, mounted: 0, uploaded: 3});
    const made = proxy.requests.slice(before);
    const big = single.images[0]!.layers[0]!;
    const patches = made.filter((r) => r.method === 'PATCH');
    // The big layer takes ceil(size / 64 KiB) chunks, each naming its byte range.
    expect(patches.length).toBeGreaterThanOrEqual(Math.ceil(big.size / 65536) + 2);
    const ranges = patches.map((p) => String(p.headers['content-range']));
    expect(ranges).toContain(`0-${65535}`);
    expect(ranges).toContain(`65536-${2 * 65536 - 1}`);
    expect(made.filter((r) => r.method === 'PUT' && r.path.includes('digest=')).length).toBe(3);
    expect(made.some((r) => r.method === 'PUT' && r.path.endsWith('/manifests/v1'))).toBe(true);

    const back = await pullBack('chunked/app:v1');
    expect(back.digest).toBe(single.images[0]!.manifest.digest);
    expect(sha256(back.layers[0]!)).toBe(big.digest);
  });

  it('falls back to POST then one PUT with the body (monolithic), and skips blobs already there', async () => {
    const client = proxiedClient();
    const before = proxy.requests.length;
    const result = await pushImage(cache, client, `${registry.host}/src/app:v1`, `${registry.host}/mono/app:v1`, {monolithic: true, mount: false});
    expect(result.blobs.uploaded).toBe(3);
    const made = proxy.requests.slice(before);
    expect(made.filter((r) => r.method === 'PATCH')).toEqual([]);
    const puts = made.filter((r) => r.method === 'PUT' && r.path.includes('digest='));
    expect(puts.map((p) => Number(p.headers['content-length'])).sort((a, b) => a - b)).toEqual(
      [single.images[0]!.config.size, ...single.images[0]!.layers.map((l) => l.size)].sort((a, b) => a - b),
    );
    expect((await pullBack('mono/app:v1')).digest).toBe(single.images[0]!.manifest.digest);

    const again = await pushImage(cache, client, `${registry.host}/src/app:v1`, `${registry.host}/mono/app:v2`);
    expect(again.blobs).toEqual({exists: 3, mounted: 0, uploaded: 0});
    await client.close();
  });

  it('falls back to one PUT per blob when the registry refuses chunks', async () => {
    const client = proxiedClient();
    const undo = proxy.refuse((r) => r.method === 'PATCH', 405);
    try {
      const before = proxy.requests.length;
      const result = await pushImage(cache, client, `${registry.host}/src/app:v1`, `${registry.host}/refused/app:v1`, {chunkSize: 64 * 1024, mount: false});
      expect(result.blobs.uploaded).toBe(3);
      const made = proxy.requests.slice(before);
      expect(made.filter((r) => r.method === 'PATCH')).toHaveLength(3);
      expect(made.filter((r) => r.method === 'PUT' && r.path.includes('digest=') && Number(r.headers['content-length']) > 0)).toHaveLength(3);
    } finally {
      undo();
      await client.close();
    }
    expect((await pullBack('refused/app:v1')).digest).toBe(single.images[0]!.manifest.digest);
  });

  it('mounts blobs from another repository of the same registry', async () => {
    const client = proxiedClient();
    const before = proxy.requests.length;
    // src/app has every blob: the push to a new repository mounts instead of uploading.
    const result = await pushImage(cache, client, `${registry.host}/src/app:v1`, `${registry.host}/mounted/app:v1`);
    await client.close();
    expect(result.blobs).toEqual({exists: 0, mounted: 3, uploaded: 0});
    const mounts = proxy.requests.slice(before).filter((r) => r.method === 'POST' && r.path.includes('mount='));
    expect(mounts).toHaveLength(3);
    expect(mounts[0]!.path).toContain('from=src%2Fapp');
    expect((await pullBack('mounted/app:v1')).digest).toBe(single.images[0]!.manifest.digest);
  });

  it('pushes a whole index (children by digest, then the index), or one platform of it', async () => {
    const client = new RegistryClient();
    const all = await pushImage(cache, client, `${registry.host}/src/multi:v1`, `${registry.host}/copy/multi:v1`, {chunkSize: 1000, mount: false});
    expect(all.digest).toBe(multiDigest);
    expect(await inspectDigest(registry.host, 'copy/multi:v1')).toBe(multiDigest);
    const out = await mkdtemp(join(work, 'all-'));
    await run('skopeo', ['copy', '--quiet', '--all', '--src-tls-verify=false', `docker://${registry.host}/copy/multi:v1`, `oci:${out}:x`]);

    const one = await pushImage(cache, client, `${registry.host}/src/multi:v1`, `${registry.host}/copy/arm:v1`, {platform: platformForArch('arm64')});
    expect(one.digest).toBe(multi.images[1]!.manifest.digest);
    expect(await inspectDigest(registry.host, 'copy/arm:v1')).toBe(multi.images[1]!.manifest.digest);
    await client.close();
  });
});
