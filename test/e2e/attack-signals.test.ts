// Signals in the middle of work: SIGKILL during `tskit build` (temp outputs a killed process
// cannot remove: its journal lets `tskit gc` and the next build do it), and SIGINT, SIGTERM
// and SIGKILL during `tskit cache pull` (a message like build's and nothing left; after
// SIGKILL the next pull or `tskit gc` removes the dead pull's temp files and leases).
// `tskit gc` runs with --older-than 36500d so its provider sweeps take nothing of anyone
// else's on a shared machine: only the journals and the cache of this test are touched.
import {execFileSync, type ChildProcess} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runBounded} from '../support/bounded-run.ts';
import {ensureBuilt} from '../support/cli.ts';
import {serveLayout, startHostileRegistry, type HostileRegistry} from '../support/hostile-registry.ts';
import {leftovers} from '../support/oci-cache-helpers.ts';
import {writeOciLayout} from '../support/oci-images.ts';

let work: string;
let registry: HostileRegistry;
let layerDigest: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-attack-signals-'));
  registry = await startHostileRegistry();
  const layout = await writeOciLayout(join(work, 'layout'), 'v1', {architecture: 'amd64', layers: [{'data.bin': randomBytes(512 * 1024)}]});
  layerDigest = layout.images[0]!.layers[0]!.digest;
  for (const repository of ['slow/a', 'slow/b', 'slow/c']) await serveLayout(registry, layout.dir, repository, 'v1');
  const other = await writeOciLayout(join(work, 'other'), 'v1', {architecture: 'amd64', layers: [{'other.bin': randomBytes(1024)}]});
  await serveLayout(registry, other.dir, 'fine/a', 'v1');
  // the slow ones send a little of the layer and then nothing more for a long while
  registry.fault({kind: 'trickle', match: (path) => path.startsWith('/v2/slow/') && path.endsWith(layerDigest), bytesPerTick: 16 * 1024, tickMs: 10_000});
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const names = (dir: string) => readdir(dir).catch(() => [] as string[]);
const gc = (env: Record<string, string>) => runBounded(['gc', '--older-than', '36500d'], {env: {...env, AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_PROFILE: undefined}});

describe('SIGKILL during tskit build', () => {
  it('leaves temp files that tskit gc removes (and that the next build removes)', async () => {
    // a sparse 3.5 GiB file keeps the build writing for a few seconds
    const big = join(work, 'big.bin');
    execFileSync('truncate', ['-s', '3584M', big]);
    const config = join(work, 'big.yml');
    await writeFile(config, `files:\n  - path: big.bin\n    source: ${big}\n`);
    const env = {TSKIT_STATE: join(work, 'state'), TSKIT_CACHE: join(work, 'cache-build')};
    const out = join(work, 'out');

    const killMidWrite = async () => {
      let child: ChildProcess | undefined;
      const running = runBounded(['build', '--format', 'tar', '--dir', out, config], {env, started: (c) => (child = c)});
      await until('the staged output', async () => (await names(out)).some((n) => n.includes('.tskit-tmp-')));
      child!.kill('SIGKILL');
      const ran = await running;
      expect(ran.signal).toBe('SIGKILL');
      const left = await names(out);
      expect(left.filter((n) => /^\.big\.tar\.tskit-tmp-\d+-[0-9a-f]{8}-\d+$/.test(n))).toHaveLength(1);
      expect(await names(join(work, 'state', 'runs'))).toHaveLength(1);
    };

    await killMidWrite();
    const swept = await gc(env);
    expect(swept.code, swept.stderr).toBe(0);
    expect(swept.stdout).toMatch(new RegExp(`removed build staged-outputs ${out.replaceAll('.', '\\.')}/\\*\\.tskit-tmp-\\d+-[0-9a-f]{8}-\\* \\(run tskit-`));
    expect(await names(out)).toEqual([]);
    expect(await names(join(work, 'state', 'runs'))).toEqual([]);

    // killed again: the next build (of something else, into the same directory) removes it
    await killMidWrite();
    const small = join(work, 'small.yml');
    await writeFile(small, 'files:\n  - path: hello\n    contents: hi\n');
    const next = await runBounded(['build', '--format', 'tar', '--dir', out, small], {env});
    expect(next.code, next.stderr).toBe(0);
    expect(await names(out)).toEqual(['small.tar']);
    expect(await names(join(work, 'state', 'runs'))).toEqual([]);
  });
});

describe('signals during tskit cache pull', () => {
  for (const [signal, code, repository] of [['SIGINT', 130, 'slow/a'], ['SIGTERM', 143, 'slow/b']] as const) {
    it(`${signal}: exits ${code} saying so, and leaves no temp file, lease or lock`, async () => {
      const cache = join(work, `cache-${signal}`);
      let child: ChildProcess | undefined;
      const running = runBounded(['cache', 'pull', `${registry.host}/${repository}:v1`], {env: {TSKIT_CACHE: cache}, started: (c) => (child = c)});
      await until('the download', async () => (await names(join(cache, '.tskit', 'ingest'))).length > 0);
      child!.kill(signal);
      const ran = await running;
      expect(ran.code).toBe(code);
      expect(ran.stderr).toContain(`tskit: error: interrupted by ${signal}`);
      expect(ran.ms).toBeLessThan(20_000); // not the 10 s the stalled registry takes per chunk, for ever
      expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
      expect(await names(join(cache, 'blobs', 'sha256'))).not.toContain(layerDigest.slice(7));
    });
  }

  it('SIGKILL: the next pull, or tskit gc, removes the dead pull\'s temp file and lease', async () => {
    const cache = join(work, 'cache-kill');
    const killMidPull = async () => {
      let child: ChildProcess | undefined;
      const running = runBounded(['cache', 'pull', `${registry.host}/slow/c:v1`], {env: {TSKIT_CACHE: cache}, started: (c) => (child = c)});
      await until('the download', async () => (await names(join(cache, '.tskit', 'ingest'))).length > 0);
      child!.kill('SIGKILL');
      expect((await running).signal).toBe('SIGKILL');
      const left = await leftovers(cache);
      expect(left.ingest).toHaveLength(1);
      expect(left.leases).toHaveLength(1);
    };

    await killMidPull();
    const next = await runBounded(['cache', 'pull', `${registry.host}/fine/a:v1`], {env: {TSKIT_CACHE: cache}});
    expect(next.code, next.stderr).toBe(0);
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});

    await killMidPull();
    const swept = await gc({TSKIT_CACHE: cache, TSKIT_STATE: join(work, 'state-kill')});
    expect(swept.code, swept.stderr).toBe(0);
    expect(swept.stdout).toMatch(/removed cache temp-file .*\/\.tskit\/ingest\//);
    expect(swept.stdout).toMatch(/removed cache lease .*\/\.tskit\/leases\//);
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
  });
});

describe('--name', () => {
  it('is a file name: ../x and a/b are refused before anything is pulled or written', async () => {
    const config = join(work, 'named.yml');
    await writeFile(config, 'files:\n  - path: hello\n    contents: hi\n');
    const out = join(work, 'named', 'out');
    await mkdir(out, {recursive: true});
    for (const name of ['../x', 'a/b', '..', '.']) {
      const ran = await runBounded(['build', '--format', 'tar', '--name', name, '--dir', out, config], {env: {TSKIT_STATE: join(work, 'state')}});
      expect(ran.code, name).toBe(2);
      expect(ran.stderr).toContain(`tskit: error: the output name ${JSON.stringify(name)} is not a file name`);
    }
    expect(await names(join(work, 'named'))).toEqual(['out']);
    expect(await names(out)).toEqual([]);
  });
});
