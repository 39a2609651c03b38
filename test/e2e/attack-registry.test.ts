// Attacks a misbehaving registry mounts on `tskit cache pull` and `tskit build`
// (test/support/hostile-registry.ts): a Range retry answered with the whole blob, a registry
// that never sends headers or trickles a body for ever, an index nested 50 deep. Each run
// is bounded: the wall time and peak RSS asserted are limits a regression cannot meet by luck.
import {createHash} from 'node:crypto';
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {MediaTypes} from '../../src/oci/types.ts';
import {runBounded} from '../support/bounded-run.ts';
import {ensureBuilt} from '../support/cli.ts';
import {serveLayout, startHostileRegistry, type HostileRegistry} from '../support/hostile-registry.ts';
import {leftovers} from '../support/oci-cache-helpers.ts';
import {writeOciLayout} from '../support/oci-images.ts';

let work: string;
let registry: HostileRegistry;
let layerDigest: string;
let layerBytes: Buffer;

const fileBody = (i: number) => createHash('sha256').update(`file ${i}`).digest('hex').repeat(40);

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-attack-registry-'));
  registry = await startHostileRegistry();
  // An uncompressed layer: zeros in front of it read as a tar's end-of-archive, which is how
  // the Range bug once built an image without the layer's files and exited 0.
  const files: Record<string, string> = {};
  for (let i = 0; i < 100; i++) files[`data/file-${i}`] = fileBody(i);
  const layout = await writeOciLayout(join(work, 'layout'), 'v1', {architecture: 'amd64', layers: [files], compression: 'none'});
  layerDigest = layout.images[0]!.layers[0]!.digest;
  layerBytes = await readFile(join(layout.dir, 'blobs', 'sha256', layerDigest.slice(7)));
  await serveLayout(registry, layout.dir, 'range/app', 'v1');
  await serveLayout(registry, layout.dir, 'silent/app', 'v1');
  await serveLayout(registry, layout.dir, 'slow/app', 'v1');
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('a registry that answers a Range retry with the whole blob', () => {
  it('starts the blob over from byte 0: the cached blob is the real one and the build has every file', async () => {
    registry.fault({kind: 'cut-then-full', digest: layerDigest, afterBytes: 64 * 1024});
    const cache = join(work, 'cache-range');
    const config = join(work, 'range.yml');
    await writeFile(config, `onboot:\n  - name: app\n    image: ${registry.host}/range/app:v1\n`);
    const out = join(work, 'out-range');
    const ran = await runBounded(['build', '--format', 'tar', '--dir', out, config], {env: {TSKIT_CACHE: cache}});
    expect(ran.code, ran.stderr).toBe(0);
    // the download was cut and retried with Range, and the registry answered 200
    const gets = registry.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layerDigest}`));
    expect(gets.length).toBeGreaterThanOrEqual(2);
    expect(gets[1]!.range).toBe(`bytes=${64 * 1024}-`);
    expect(gets[1]!.status).toBe(200);
    // what the cache holds is exactly the blob
    const cached = await readFile(join(cache, 'blobs', 'sha256', layerDigest.slice(7)));
    expect(cached.length).toBe(layerBytes.length);
    expect(sha(cached)).toBe(layerDigest);
    // and the image has the layer's files
    const {execFileSync} = await import('node:child_process');
    const names = execFileSync('tar', ['-tf', join(out, 'range.tar')], {encoding: 'utf8'}).split('\n');
    expect(names.filter((n) => n.startsWith('containers/onboot/000-app/lower/data/file-'))).toHaveLength(100);
    expect((await leftovers(cache)).ingest).toEqual([]);
  });
});

describe('a cached blob that fails verification', () => {
  it('fails the build even when the damage reads as an empty tar (zeros in front)', async () => {
    const cache = join(work, 'cache-range');
    const blob = join(cache, 'blobs', 'sha256', layerDigest.slice(7));
    const damaged = Buffer.from(layerBytes);
    damaged.fill(0, 0, 4096); // two zero blocks: a tar reader stops here
    await writeFile(blob, damaged);
    await rm(join(cache, '.tskit', 'derived'), {recursive: true, force: true});
    const config = join(work, 'range.yml');
    const out = join(work, 'out-damaged');
    const ran = await runBounded(['build', '--format', 'tar', '--dir', out, config], {env: {TSKIT_CACHE: cache}});
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`blob ${layerDigest} of image ${registry.host}/range/app:v1 from the cache ${cache} failed verification`);
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });
});

describe('a registry that stalls', () => {
  it('one that never sends headers fails the pull at the --timeout deadline, naming the blob', async () => {
    registry.fault({kind: 'no-headers', match: (path) => path.startsWith('/v2/silent/app/blobs/') && path.endsWith(layerDigest)});
    const cache = join(work, 'cache-silent');
    const ran = await runBounded(['cache', 'pull', '--timeout', '3s', `${registry.host}/silent/app:v1`], {env: {TSKIT_CACHE: cache}, killAfterMs: 60_000});
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`tskit: error: blob ${layerDigest} of image ${registry.host}/silent/app:v1 from ${registry.host}: not complete within 3s (the deadline for one blob or manifest; --timeout changes it)`);
    // 3 s and tskit's start; five 60 s header timeouts before
    expect(ran.ms).toBeGreaterThanOrEqual(3_000);
    expect(ran.ms).toBeLessThan(12_000);
    expect(await readdir(join(cache, 'blobs', 'sha256'))).not.toContain(layerDigest.slice(7));
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
  });

  it('one that trickles a body for ever fails at the deadline too', async () => {
    registry.fault({kind: 'trickle', match: (path) => path.startsWith('/v2/slow/app/blobs/') && path.endsWith(layerDigest), bytesPerTick: 512, tickMs: 100});
    const cache = join(work, 'cache-slow');
    const ran = await runBounded(['cache', 'pull', '--timeout', '4s', `${registry.host}/slow/app:v1`], {env: {TSKIT_CACHE: cache}, killAfterMs: 60_000});
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`blob ${layerDigest} of image ${registry.host}/slow/app:v1 from ${registry.host}: not complete within 4s`);
    expect(ran.ms).toBeLessThan(13_000);
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
  });
});

describe('indexes nested in indexes', () => {
  /** Wraps the layout's image manifest in `depth` indexes, each naming the next as linux/amd64. */
  function nest(repository: string, depth: number): string {
    const manifestDigest = [...registry.blobs].find(([, b]) => b.mediaType === MediaTypes.ociManifest)![0];
    let inner: {mediaType: string; digest: string; size: number} = {mediaType: MediaTypes.ociManifest, digest: manifestDigest, size: registry.blobs.get(manifestDigest)!.bytes.length};
    for (let i = 0; i < depth; i++) {
      const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{...inner, platform: {os: 'linux', architecture: 'amd64'}}]}));
      inner = {mediaType: MediaTypes.ociIndex, digest: registry.put(bytes, MediaTypes.ociIndex), size: bytes.length};
    }
    registry.tag(repository, 'v1', inner.digest);
    return inner.digest;
  }

  it('follows a few, as containerd does, and refuses 50 with a message of its own', async () => {
    nest('nested/two', 2);
    const cache = join(work, 'cache-nested');
    const two = await runBounded(['cache', 'pull', `${registry.host}/nested/two:v1`], {env: {TSKIT_CACHE: cache}});
    expect(two.code, two.stderr).toBe(0);
    // and builds from the cache alone
    const config = join(work, 'nested.yml');
    await writeFile(config, `onboot:\n  - name: app\n    image: ${registry.host}/nested/two:v1\n`);
    const before = registry.requests.length;
    const built = await runBounded(['build', '--format', 'tar', '--dir', join(work, 'out-nested'), config], {env: {TSKIT_CACHE: cache}});
    expect(built.code, built.stderr).toBe(0);
    expect(registry.requests.length).toBe(before);

    const root = nest('nested/fifty', 50);
    const fifty = await runBounded(['cache', 'pull', `${registry.host}/nested/fifty:v1`], {env: {TSKIT_CACHE: cache}});
    expect(fifty.code).toBe(1);
    const error = fifty.stderr.split('\n').filter((line) => line.startsWith('tskit: error:'));
    expect(error).toEqual([expect.stringMatching(new RegExp(`^tskit: error: image ${registry.host}/nested/fifty:v1: index ${root} has indexes nested more than 4 deep \\(the one at depth 5 is sha256:[0-9a-f]{64}\\); tskit follows at most 4$`))]);
    expect(fifty.stderr).not.toMatch(/its index offers/);
    expect(fifty.ms).toBeLessThan(10_000);
    // only the five indexes it read were fetched
    expect(registry.requests.filter((r) => r.path.startsWith('/v2/nested/fifty/manifests/')).length).toBeLessThanOrEqual(5);
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
  });
});
