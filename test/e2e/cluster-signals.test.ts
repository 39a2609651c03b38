// Teardown of a three-VM cluster however the run ends: SIGINT and SIGTERM leave no qemu (by
// the pids the run reported), no temp dir, no cluster network and no journal entry; after a
// SIGKILL of tskit, the journal names what is left and `tskit gc` removes it. Private TMPDIR
// and TSKIT_STATE, so every check is on this run's own files.
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';
import {startCluster, waitGone} from './cluster-support.ts';

const mirror = inject('tskitMirror');
let work: string;
let image: string;
let cache: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-cluster-signals-'));
  cache = join(work, 'cache');
  const built = await tskit(['build', '--mirror', mirror, '--format', 'kernel+initrd', '--name', 'hello', '--dir', work, join(ROOT, 'templates/hello.yml')], {env: {TSKIT_CACHE: cache}});
  expect(built.code, built.stderr).toBe(0);
  image = join(work, 'hello');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function privateEnv(name: string): Promise<Record<string, string>> {
  const dir = join(work, name);
  await mkdir(join(dir, 'tmp'), {recursive: true});
  return {TSKIT_STATE: join(dir, 'state'), TMPDIR: join(dir, 'tmp')};
}

async function leftovers(env: Record<string, string>): Promise<string[]> {
  const tmp = await readdir(env.TMPDIR!);
  const journals = await readdir(join(env.TSKIT_STATE!, 'runs')).catch(() => [] as string[]);
  return [...tmp.map((f) => `tmp/${f}`), ...journals.map((f) => `journal ${f}`)];
}

const args = (): string[] => ['run', 'qemu', '--count', '3', '--mem', '512', '--accel', 'tcg', '--wait-for', 'NEVER-PRINTED', '--timeout', '150s', '--json', image];

describe('a three-VM run, interrupted', () => {
  it.each([
    ['SIGINT', 130, 1],
    ['SIGTERM', 143, 1],
    ['SIGINT', 130, 2],
  ] as const)('%s while the VMs boot: exit %d, no qemu, temp dir, network or journal entry left (%d signal(s): the second kills at once)', async (signal, code, times) => {
    const env = await privateEnv(`${signal}-${times}`);
    const t = startCluster(args(), env);
    const created = await t.waitForEvents('instance.created', 3);
    const pids = created.map((e) => (e.detail as {pid: number}).pid);
    const dirs = created.map((e) => (e.detail as {tempDir: string}).tempDir);
    // every VM's kernel is printing: the cluster is well under way
    await t.waitForEvents('console', 9);
    expect(await readdir(join(env.TSKIT_STATE!, 'runs'))).toHaveLength(1);
    for (let i = 0; i < times; i++) t.child.kill(signal);
    const r = await t.result;
    expect(r.code, r.stderr).toBe(code);
    expect(r.events.filter((e) => e.type === 'verdict').map((e) => [e.verdict, e.exitCode])).toEqual([
      ['interrupted', code],
      ['interrupted', code],
      ['interrupted', code],
    ]);
    expect(r.events.filter((e) => e.type === 'instance.destroyed')).toHaveLength(3);
    expect(r.events.at(-1)).toMatchObject({type: 'cluster.verdict', verdict: 'interrupted', exitCode: code});
    expect(await waitGone(pids, 1000)).toEqual([]);
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
    expect(await leftovers(env)).toEqual([]);
  });

  it('SIGKILL leaves what the journal names; tskit gc removes it all', async () => {
    const env = await privateEnv('SIGKILL');
    const t = startCluster(args(), env);
    const created = await t.waitForEvents('instance.created', 3);
    const pids = created.map((e) => (e.detail as {pid: number}).pid);
    await t.waitForEvents('console', 3);
    t.child.kill('SIGKILL');
    await t.result;
    // qemu goes with tskit (parent-death signal); its files and the journal stay
    expect(await waitGone(pids)).toEqual([]);
    const left = await leftovers(env);
    expect(left.filter((f) => /^tmp\/tskit-qemu-[a-z0-9]{6}$/.test(f))).toHaveLength(3);
    expect(left.filter((f) => /^tmp\/tskit-qemu-net-[a-z0-9]{6}$/.test(f))).toHaveLength(1);
    const journals = left.filter((f) => f.startsWith('journal '));
    expect(journals).toHaveLength(1);
    const journal = await readFile(join(env.TSKIT_STATE!, 'runs', journals[0]!.slice('journal '.length)), 'utf8');
    for (const e of created) expect(journal).toContain(`"id":"${String((e.detail as {tempDir: string}).tempDir).split('/').pop()}"`);

    const dry = await tskit(['gc', '--dry-run'], {env});
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.trim().split('\n').filter((l) => l.startsWith('would remove qemu '))).toHaveLength(4);
    expect(await leftovers(env)).toEqual(left);

    const gc = await tskit(['gc', 'qemu'], {env});
    expect(gc.code, gc.stderr).toBe(0);
    const lines = gc.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const e of created) expect(lines).toContain(`removed qemu instance ${String((e.detail as {tempDir: string}).tempDir).split('/').pop()} (run ${String(e.runId)})`);
    expect(lines.filter((l) => /^removed qemu network tskit-qemu-net-\w{6} \(run tskit-/.test(l))).toHaveLength(1);
    expect(await leftovers(env)).toEqual([]);
    // nothing left to find
    const again = await tskit(['gc'], {env});
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('');
  });
});
