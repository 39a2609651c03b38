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
import type {TestProject} from 'vitest/node';
import {startFixtureRegistry} from './fixtures/fixture-registry.ts';
import type {FixtureSet} from './fixtures/make-fixtures.ts';
import {findTools} from './fixtures/lib/tools.ts';

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
  const {set, registry, stop} = await startFixtureRegistry(log);
  project.provide('tskitRegistry', registry.host);
  project.provide('tskitRegistryUrl', registry.url);
  project.provide('tskitMirror', `${TEMPLATE_REGISTRY}=${registry.url}`);
  project.provide('tskitFixtures', set);
  process.env.TSKIT_TEST_REGISTRY = registry.host;
  return stop;
}
