// The cache under sharing: reference-counted removal, cleaning, leases that protect a pull
// in progress, lock recovery, and two processes pulling into one directory at once.
import {execFile, spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../src/errors.ts';
import {ImageCache} from '../../src/oci/cache.ts';
import {parseMirrors} from '../../src/oci/endpoints.ts';
import {platformForArch} from '../../src/oci/platform.ts';
import {blobDigests, imageFiles, indexRefs, leftovers} from '../support/oci-cache-helpers.ts';
import {pushLayout, sha256, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {startCountingProxy} from '../support/oci-proxy.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const run = promisify(execFile);
const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');
const amd64 = platformForArch('amd64');
let registry: RunningRegistry;
let work: string;
let appA: WrittenLayout;
let appB: WrittenLayout;
let big: WrittenLayout;
const base = {'bin/busybox': 'the shared base layer'};

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-cache-'));
  appA = await writeOciLayout(join(work, 'a'), 'v1', {architecture: 'amd64', layers: [base, {'app/a': 'only in A'}]});
  appB = await writeOciLayout(join(work, 'b'), 'v1', {architecture: 'amd64', layers: [base, {'app/b': 'only in B'}]});
  big = await writeOciLayout(join(work, 'big'), 'v1', {
    architecture: 'amd64',
    layers: [0, 1, 2, 3, 4, 5].map((i) => ({[`data/${i}`]: randomBytes(1_000_000)})),
  });
  await pushLayout(appA, registry.host, 'shared/a:v1');
  await pushLayout(appB, registry.host, 'shared/b:v1');
  await pushLayout(big, registry.host, 'shared/big:v1');
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('removing and cleaning', () => {
  it('cache rm keeps blobs another image shares (LinuxKit deletes them; tskit must not)', async () => {
    const dir = await mkdtemp(join(work, 'rm-'));
    const cache = new ImageCache({dir});
    await cache.resolve(`${registry.host}/shared/a:v1`, amd64);
    await cache.resolve(`${registry.host}/shared/b:v1`, amd64);
    await cache.close();
    const baseLayer = appA.images[0]!.layers[0]!.digest;
    expect(appB.images[0]!.layers[0]!.digest).toBe(baseLayer);

    const listing = await new ImageCache({dir}).list();
    const a = listing.images.find((i) => i.ref.endsWith('/shared/a:v1'))!;
    const baseSize = appA.images[0]!.layers[0]!.size;
    expect(a.sharedSize).toBe(baseSize);
    expect(a.uniqueSize).toBe(a.size - baseSize);

    // A fresh instance, as a separate `tskit cache rm` would be: no leases of its own.
    const remover = new ImageCache({dir});
    const result = await remover.remove([`${registry.host}/shared/a:v1`]);
    await remover.close();
    expect(result.removed).toEqual([`${registry.host}/shared/a:v1`]);
    expect(result.keptBlobs).toEqual([baseLayer]);
    expect(result.deletedBlobs.sort()).toEqual([appA.images[0]!.manifest.digest, appA.images[0]!.config.digest, appA.images[0]!.layers[1]!.digest].sort());
    expect(await blobDigests(dir)).toContain(baseLayer);

    // B is still whole, from the cache alone (the registry is not asked: it is behind a dead mirror).
    const offline = new ImageCache({dir, registry: {mirrors: parseMirrors(['http://127.0.0.1:9']), retry: {attempts: 1}}});
    const b = await offline.resolve(`${registry.host}/shared/b:v1`, amd64);
    expect(await imageFiles(offline, b)).toEqual({...base, 'app/b': 'only in B'});
    expect((await offline.verify()).corrupt).toEqual([]);
    await offline.close();

    const last = new ImageCache({dir});
    await last.remove([`shared/b:v1`.replace(/^/, `${registry.host}/`)]);
    await last.close();
    expect(await blobDigests(dir)).toEqual([]);
    expect(await indexRefs(dir)).toEqual({});
  });

  it('cache rm of a reference the cache lacks removes nothing and says which', async () => {
    const dir = await mkdtemp(join(work, 'rm-missing-'));
    const cache = new ImageCache({dir});
    await cache.resolve(`${registry.host}/shared/a:v1`, amd64);
    const before = await blobDigests(dir);
    await expect(cache.remove([`${registry.host}/shared/a:v1`, 'alpine:3.20'])).rejects.toThrow(
      `not in the cache ${dir}: docker.io/library/alpine:3.20`,
    );
    expect(await blobDigests(dir)).toEqual(before);
    expect(Object.keys(await indexRefs(dir))).toEqual([`${registry.host}/shared/a:v1`]);
    await cache.close();
  });

  it('clean --unused deletes only blobs no image needs; clean deletes everything', async () => {
    const dir = await mkdtemp(join(work, 'clean-'));
    const cache = new ImageCache({dir});
    await cache.resolve(`${registry.host}/shared/a:v1`, amd64);
    await cache.close();
    const junk = Buffer.from('nobody needs me');
    await writeFile(cache.blobPath(sha256(junk)), junk);
    const kept = (await blobDigests(dir)).filter((d) => d !== sha256(junk));

    const cleaner = new ImageCache({dir});
    const unused = await cleaner.clean({unusedOnly: true});
    expect(unused.deletedBlobs).toEqual([sha256(junk)]);
    expect(await blobDigests(dir)).toEqual(kept);
    const all = await cleaner.clean();
    expect(all.removed).toEqual([`${registry.host}/shared/a:v1`]);
    expect(await blobDigests(dir)).toEqual([]);
    expect(await indexRefs(dir)).toEqual({});
    await cleaner.close();
  });
});

describe('sharing one cache between processes', () => {
  it('two processes pulling the same image at once leave a consistent cache', async () => {
    const dir = await mkdtemp(join(work, 'two-'));
    const proxy = await startCountingProxy(registry.host);
    try {
      const ref = `${proxy.host}/shared/big:v1`;
      // Hold the first layer until both processes ask for it: they are then mid-pull together.
      const first = big.images[0]!.layers[0]!.digest;
      const isFirst = (r: {method: string; path: string}) => r.method === 'GET' && r.path.endsWith(`/blobs/${first}`);
      const gate = proxy.hold(isFirst);
      const worker = join(process.cwd(), 'test', 'support', 'oci-pull-worker.ts');
      const workers = [1, 2].map(() => run(NODE, [worker, dir, ref, 'amd64'], {timeout: 60_000}));
      while (proxy.requests.filter(isFirst).length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
      gate.release();
      const outputs = (await Promise.all(workers)).map((r) => JSON.parse(r.stdout) as {digest: string; layers: string[]});
      expect(outputs[0]).toEqual(outputs[1]);
      expect(outputs[0]!.digest).toBe(big.images[0]!.manifest.digest);

      expect(await indexRefs(dir)).toEqual({[ref]: big.images[0]!.manifest.digest});
      const expected = [big.images[0]!.manifest.digest, big.images[0]!.config.digest, ...big.images[0]!.layers.map((l) => l.digest)].sort();
      expect(await blobDigests(dir)).toEqual(expected);
      const check = new ImageCache({dir});
      expect(await check.verify()).toEqual({checked: expected.length, corrupt: [], removed: []});
      await check.close();
      expect(await leftovers(dir)).toEqual({ingest: [], leases: [], lock: false});
    } finally {
      await proxy.stop();
    }
  });

  it('processes pulling different images that share layers, while another cleans, end consistent', async () => {
    const dir = await mkdtemp(join(work, 'mixed-'));
    const worker = join(process.cwd(), 'test', 'support', 'oci-pull-worker.ts');
    let pending = 3;
    const pulls = [`${registry.host}/shared/a:v1`, `${registry.host}/shared/b:v1`, `${registry.host}/shared/big:v1`].map((ref) =>
      run(NODE, [worker, dir, ref, 'amd64'], {timeout: 60_000}).finally(() => pending--),
    );
    const cleaner = new ImageCache({dir});
    let cleans = 0;
    while (pending > 0) {
      await cleaner.clean({unusedOnly: true});
      cleans++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(pulls);
    expect(cleans).toBeGreaterThan(3);
    await cleaner.clean({unusedOnly: true});
    await cleaner.close();
    const check = new ImageCache({dir, registry: {mirrors: parseMirrors(['http://127.0.0.1:9']), retry: {attempts: 1}}});
    for (const ref of ['shared/a:v1', 'shared/b:v1', 'shared/big:v1']) await check.resolve(`${registry.host}/${ref}`, amd64);
    expect((await check.verify()).corrupt).toEqual([]);
    expect((await check.list()).unusedBlobs).toBe(0);
    await check.close();
  });

  it('a clean during a pull keeps the blobs that pull has written (its lease), and the pull completes', async () => {
    const dir = await mkdtemp(join(work, 'lease-'));
    const proxy = await startCountingProxy(registry.host);
    try {
      const layer = appA.images[0]!.layers[1]!.digest;
      const gate = proxy.hold((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer}`));
      const puller = new ImageCache({dir, registry: {mirrors: parseMirrors([`${registry.host}=http://${proxy.host}`])}});
      const pulling = puller.resolve(`${registry.host}/shared/a:v1`, amd64);
      await gate.held;
      // The manifest and config are in blobs/ now, but no reference names them yet.
      expect(await blobDigests(dir)).toEqual(expect.arrayContaining([appA.images[0]!.manifest.digest, appA.images[0]!.config.digest]));
      const cleaner = new ImageCache({dir});
      const cleaned = await cleaner.clean();
      expect(cleaned.deletedBlobs).toEqual([]);
      expect(cleaned.keptBlobs).toEqual(expect.arrayContaining([appA.images[0]!.manifest.digest, appA.images[0]!.config.digest]));
      gate.release();
      const image = await pulling;
      expect(await imageFiles(puller, image)).toEqual({...base, 'app/a': 'only in A'});
      await puller.close();
      // Once the puller is done, the image is complete on its own.
      const later = new ImageCache({dir, registry: {mirrors: parseMirrors(['http://127.0.0.1:9']), retry: {attempts: 1}}});
      await later.resolve(`${registry.host}/shared/a:v1`, amd64);
      await later.close();
      await cleaner.close();
    } finally {
      await proxy.stop();
    }
  });

  it('ignores and removes the leases of dead processes', async () => {
    const dir = await mkdtemp(join(work, 'dead-'));
    const cache = new ImageCache({dir});
    await cache.ensureLayout();
    const junk = Buffer.from('leased by a process that died');
    await writeFile(cache.blobPath(sha256(junk)), junk);
    const dead = spawn('true');
    const pid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    await writeFile(join(dir, '.tskit', 'leases', `${pid}-dead.json`), JSON.stringify({host: (await import('node:os')).hostname(), pid, digests: [sha256(junk)]}));
    const alive = `${process.pid}-alive.json`;
    const junk2 = Buffer.from('leased by a live process');
    await writeFile(cache.blobPath(sha256(junk2)), junk2);
    await writeFile(join(dir, '.tskit', 'leases', alive), JSON.stringify({host: (await import('node:os')).hostname(), pid: process.pid, digests: [sha256(junk2)]}));
    const result = await cache.clean({unusedOnly: true});
    expect(result.deletedBlobs).toEqual([sha256(junk)]);
    expect(result.keptBlobs).toEqual([sha256(junk2)]);
    expect(await readdir(join(dir, '.tskit', 'leases'))).toEqual([alive]);
    await cache.close();
  });

  it('breaks a lock left by a dead process, and waits for (then names) a live holder', async () => {
    const dir = await mkdtemp(join(work, 'lock-'));
    await mkdir(join(dir, '.tskit'), {recursive: true});
    const {hostname} = await import('node:os');
    const dead = spawn('true');
    const pid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const lock = join(dir, '.tskit', 'lock');
    await writeFile(lock, JSON.stringify({host: hostname(), pid, nonce: 'dead', acquired: new Date().toISOString()}));
    const cache = new ImageCache({dir, lockTimeoutMs: 2_000});
    await cache.resolve(`${registry.host}/shared/a:v1`, amd64);
    await cache.close();
    expect((await leftovers(dir)).lock).toBe(false);

    const sleeper = spawn('sleep', ['30']);
    try {
      await writeFile(lock, JSON.stringify({host: hostname(), pid: sleeper.pid, nonce: 'live', acquired: '2030-01-01T00:00:00Z'}));
      const blocked = new ImageCache({dir, lockTimeoutMs: 300});
      const error = await blocked.remove([`${registry.host}/shared/a:v1`]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TskitError);
      expect((error as Error).message).toContain(`is held by process ${sleeper.pid}`);
      expect(Object.keys(await indexRefs(dir))).toEqual([`${registry.host}/shared/a:v1`]);
      await blocked.close();
    } finally {
      sleeper.kill('SIGKILL');
      await rm(lock, {force: true});
    }
  });
});
