// vitest globalSetup: makes sure the fixture images exist (test/fixtures/make-fixtures.ts,
// cached under .fixtures/), serves them from a real docker-registry on a free loopback port
// and hands its address to the tests:
//
//   import {inject} from 'vitest';
//   const registry = inject('tskitRegistry');        // "127.0.0.1:PORT"
//   // LinuxKit-style refs name localhost:5000/tskit/...; point them here with
//   //   --mirror localhost:5000=http://${registry}
//
// Spawned CLIs get the same address in TSKIT_TEST_REGISTRY. A missing tool fails the run,
// naming the tool: CI installs them all.
import {cp, mkdir, mkdtemp, readdir, rename, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import type {TestProject} from 'vitest/node';
import {ensureFixtures, REPO_ROOT, type FixtureSet} from './fixtures/make-fixtures.ts';
import {pushFixtures} from './fixtures/push-fixtures.ts';
import {findTools} from './fixtures/lib/tools.ts';
import {startRegistry, type RunningRegistry} from './support/registry.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the registry serving the fixtures (plain HTTP). */
    tskitRegistry: string;
    /** http://host:port of the same registry. */
    tskitRegistryUrl: string;
    /** The --mirror value pointing the templates' localhost:5000 at it: "localhost:5000=http://host:port". */
    tskitMirror: string;
    /** The fixture set: every image's ref, tag, digest, platforms, and its OCI layout on disk. */
    tskitFixtures: FixtureSet;
  }
}

/** The registry name the templates and README use; tests mirror it to the real port. */
export const TEMPLATE_REGISTRY = 'localhost:5000';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await findTools(['skopeo', 'docker-registry', 'cpio', 'tar', 'qemu-system-x86_64']);
  const log = (line: string) => console.info(`[fixtures] ${line}`);
  const set = await ensureFixtures({log});
  const storage = await registryStorage(set, log);
  const registry = await startRegistry({storageDir: storage});
  project.provide('tskitRegistry', registry.host);
  project.provide('tskitRegistryUrl', registry.url);
  project.provide('tskitMirror', `${TEMPLATE_REGISTRY}=${registry.url}`);
  project.provide('tskitFixtures', set);
  process.env.TSKIT_TEST_REGISTRY = registry.host;
  return async () => {
    await registry.stop();
    await rm(dirname(storage), {recursive: true, force: true});
  };
}

/**
 * A private copy of registry storage holding the pushed fixtures. The first run for a recipe
 * key pushes into .fixtures/registry/<key>/ (skopeo, digests checked); later runs only copy
 * that directory, so tests may push, tag and delete freely without touching the cache.
 */
async function registryStorage(set: FixtureSet, log: (line: string) => void): Promise<string> {
  const cacheRoot = join(REPO_ROOT, '.fixtures', 'registry');
  const cached = join(cacheRoot, set.key);
  await mkdir(cacheRoot, {recursive: true});
  if (!(await readdir(cacheRoot)).includes(set.key)) {
    const started = Date.now();
    const filling = `${cached}.tmp-${process.pid}`;
    await rm(filling, {recursive: true, force: true});
    let registry: RunningRegistry | undefined;
    try {
      registry = await startRegistry({storageDir: filling});
      await pushFixtures(set, registry.host);
      await registry.stop();
      registry = undefined;
      await rename(filling, cached).catch(async (error: NodeJS.ErrnoException) => {
        // another run filled it first: theirs is as good as ours
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
        await rm(filling, {recursive: true, force: true});
      });
    } finally {
      await registry?.stop();
      await rm(filling, {recursive: true, force: true});
    }
    for (const name of await readdir(cacheRoot)) {
      if (name !== set.key && !name.includes('.tmp-')) await rm(join(cacheRoot, name), {recursive: true, force: true});
    }
    log(`pushed ${set.images.length} fixture images in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const storage = join(await mkdtemp(join(tmpdir(), 'tskit-fixture-registry-')), 'storage');
  await cp(cached, storage, {recursive: true});
  return storage;
}
