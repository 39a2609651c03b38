// LinuxKit parity: the same YAML built by tskit and by LinuxKit v1.8.2 from the same local
// registry (separate cold caches) gives the same root filesystem, entry by entry, and the
// same config.json/runtime.json bytes — except where LinuxKit has a known bug, which the
// tests name. Needs the `linuxkit` CLI: $LINUXKIT, `linuxkit` on PATH, or
// ~/.cache/tskit-peers/linuxkit, or `go install` of the v1.8.2 commit (test/support/linuxkit.ts);
// without one the suite is skipped with the reason printed.
import {execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';
import {tarState, type PathState} from '../support/tar-state.ts';
import {findLinuxkit} from '../support/linuxkit.ts';

const run = promisify(execFile);
const linuxkit = await findLinuxkit();
if (!linuxkit.path) console.info(`[parity] skipped: ${linuxkit.reason}`);

const registryUrl = inject('tskitRegistryUrl');
const mirror = inject('tskitMirror');
let work: string;

interface Built {
  tskit: string;
  linuxkit: string;
}

async function buildBoth(name: string, yamls: string[]): Promise<Built> {
  const out = {tskit: join(work, 'tskit', name), linuxkit: join(work, 'linuxkit', name)};
  await mkdir(out.tskit, {recursive: true});
  await mkdir(out.linuxkit, {recursive: true});
  const ours = await tskit(['build', '--format', 'tar', '--name', name, '--dir', out.tskit, '--mirror', mirror, ...yamls], {env: {TSKIT_CACHE: join(work, 'tskit-cache')}});
  expect(ours.code, ours.stderr).toBe(0);
  // LinuxKit v1.8.2 drops a non-Docker-Hub registry from references unless a mirror names it
  await run(linuxkit.path!, ['--mirror', `localhost:5000=${registryUrl}`, 'build', '--no-sbom', '--cache', join(work, 'linuxkit-cache'), '--format', 'tar', '--name', name, '--dir', out.linuxkit, ...yamls], {timeout: 300_000});
  return {tskit: join(out.tskit, `${name}.tar`), linuxkit: join(out.linuxkit, `${name}.tar`)};
}

/** Why a difference between the two trees is expected, or undefined when it is not. */
function allowed(path: string, ours: PathState | undefined, theirs: PathState | undefined, filesPaths: string[]): string | undefined {
  if (path === '' && !ours) return "LinuxKit copies the kernel.tar's './' entry; tskit writes no entry for the root itself";
  if (!ours && theirs && /\/etc\/fixture\/opaque\//.test(path)) return 'LinuxKit bug: it ignores opaque whiteouts (.wh..wh..opq), so files a later layer hid stay in';
  if (ours?.type === 'dir' && theirs?.type === 'dir' && filesPaths.some((f) => f.startsWith(`${path}/`))) {
    return "LinuxKit writes a files: entry's leading directories again with modes from the file, so a later one changes an existing directory (e.g. /etc becomes 0700); tskit keeps the directory as the image made it";
  }
  if (ours?.type === 'dir' && !theirs && ours.mode === '755' && ours.uid === 0 && ours.gid === 0) return 'tskit writes a parent directory a layer did not name; LinuxKit leaves it out';
  return undefined;
}

async function compare(built: Built, filesPaths: string[]) {
  const [ours, theirs] = await Promise.all([tarState(built.tskit), tarState(built.linuxkit)]);
  const unexplained: string[] = [];
  const explained = new Map<string, string[]>();
  for (const path of new Set([...ours.state.keys(), ...theirs.state.keys()])) {
    const a = ours.state.get(path);
    const b = theirs.state.get(path);
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const reason = allowed(path, a, b, filesPaths);
    if (reason) explained.set(reason, [...(explained.get(reason) ?? []), path]);
    else unexplained.push(`${path}\n    tskit:    ${JSON.stringify(a)}\n    linuxkit: ${JSON.stringify(b)}`);
  }
  for (const [reason, paths] of explained) console.info(`[parity] ${paths.length} allowed: ${reason} (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', ...' : ''})`);
  return {unexplained, entries: ours.state.size};
}

const yamlFilesPaths = async (yamls: string[]) => {
  const {loadConfig} = await import('../../src/config/load.ts');
  const {config} = await loadConfig(yamls);
  return (config.files ?? []).map((f) => f.path.replace(/^\/+/, ''));
};

describe.runIf(linuxkit.path)('parity with LinuxKit v1.8.2', () => {
  beforeAll(async () => {
    await ensureBuilt();
    work = await mkdtemp(join(tmpdir(), 'tskit-parity-'));
  });
  afterAll(async () => {
    await rm(work, {recursive: true, force: true});
  });

  const cases: Array<[string, string[]]> = [
    ['hello', ['templates/hello.yml']],
    ['lifecycle', ['test/fixtures/yml/lifecycle.yml']],
    ['fields', ['test/parity/fields.yml']],
    ['merged', ['test/parity/base.yml', 'test/parity/extra.yml']],
  ];
  for (const [name, files] of cases) {
    it(`${name}: the same entries, types, modes, owners, link targets and contents (config.json and runtime.json byte for byte)`, async () => {
      const yamls = files.map((f) => join(ROOT, f));
      const result = await compare(await buildBoth(name, yamls), await yamlFilesPaths(yamls));
      expect(result.unexplained, result.unexplained.join('\n')).toEqual([]);
      expect(result.entries).toBeGreaterThan(100);
    });
  }

  it('LinuxKit bug: capabilities.add merged with the label repeats capabilities; tskit keeps each once', async () => {
    const built = await buildBoth('caps', [join(ROOT, 'test/parity/caps-label.yml')]);
    const keep = (p: string) => p.endsWith('000-labelled/config.json');
    const effective = async (tar: string) => {
      const {content} = await tarState(tar, keep);
      return JSON.parse(content.get('containers/onboot/000-labelled/config.json')!.toString()).process.capabilities.effective as string[];
    };
    expect(await effective(built.linuxkit)).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_SYS_ADMIN', 'CAP_CHOWN']);
    expect(await effective(built.tskit)).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_CHOWN']);
  });

  it('LinuxKit bug: a volume declared in an earlier merged file is lost; tskit binds it', async () => {
    const yamls = ['test/parity/vol-base.yml', 'test/parity/vol-use.yml'].map((f) => join(ROOT, f));
    await expect(buildBoth('volumes', yamls)).rejects.toThrow(/volume shared not found/);
    const out = join(work, 'tskit-volumes');
    const ours = await tskit(['build', '--format', 'tar', '--name', 'v', '--dir', out, '--mirror', mirror, ...yamls], {env: {TSKIT_CACHE: join(work, 'tskit-cache')}});
    expect(ours.code, ours.stderr).toBe(0);
    const {content} = await tarState(join(out, 'v.tar'), (p) => p.endsWith('config.json'));
    const config = JSON.parse(content.get('containers/onboot/000-user/config.json')!.toString());
    expect(config.mounts).toContainEqual({destination: '/shared', type: 'bind', source: '/containers/volumes/shared/merged', options: ['rw', 'rbind', 'rshared']});
  });

  it('LinuxKit bug: cache rm deletes blobs another cached image shares; tskit keeps them', async () => {
    // tskit/kernel:6.1-ucode is tskit/kernel:6.1's layer plus a microcode layer: they share one
    const layer = async (cacheDir: string) => {
      const index = JSON.parse(await readFile(join(cacheDir, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations?: Record<string, string>}>};
      const kernel = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name']?.endsWith('tskit/kernel:6.1'))!;
      let manifest = JSON.parse(await readFile(join(cacheDir, 'blobs', 'sha256', kernel.digest.slice(7)), 'utf8'));
      if (manifest.manifests) manifest = JSON.parse(await readFile(join(cacheDir, 'blobs', 'sha256', manifest.manifests[0].digest.slice(7)), 'utf8'));
      return join(cacheDir, 'blobs', 'sha256', (manifest.layers[0].digest as string).slice(7));
    };
    const theirs = join(work, 'linuxkit-cache');
    const ours = join(work, 'tskit-cache');
    expect(existsSync(await layer(theirs))).toBe(true);
    await run(linuxkit.path!, ['cache', 'rm', '--cache', theirs, 'localhost:5000/tskit/kernel:6.1-ucode']);
    expect(existsSync(await layer(theirs)), 'LinuxKit removed the shared layer').toBe(false);
    const removed = await tskit(['cache', 'rm', 'localhost:5000/tskit/kernel:6.1-ucode'], {env: {TSKIT_CACHE: ours}});
    expect(removed.code, removed.stderr).toBe(0);
    expect(existsSync(await layer(ours)), 'tskit kept the shared layer').toBe(true);
  });
});
