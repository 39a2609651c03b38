// Clusters under real qemu: `tskit run qemu --count 3` boots three VMs of the hello image built
// by `tskit build` from the fixture registry, streams three prefixed consoles, gives three
// verdicts and a JUnit report that an XML Schema (xmllint) accepts; one VM made to fail gives
// exit 1 with its failure and console tail in the report; `tskit test` runs a manifest.
// Each test points TMPDIR and TSKIT_STATE at private directories, so "nothing left" is
// checked on this run's own files.
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';
import {junitSchemaErrors, xpath} from './cluster-support.ts';

const mirror = inject('tskitMirror');
let work: string;
let image: string;
let env: Record<string, string>;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-cluster-'));
  await mkdir(join(work, 'tmp'));
  env = {TSKIT_STATE: join(work, 'state'), TMPDIR: join(work, 'tmp'), TSKIT_CACHE: join(work, 'cache')};
  const built = await tskit(['build', '--mirror', mirror, '--format', 'kernel+initrd', '--name', 'hello', '--dir', work, join(ROOT, 'templates/hello.yml')], {env});
  expect(built.code, built.stderr).toBe(0);
  image = join(work, 'hello');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

/** What a run may leave: files in its private TMPDIR, journals in its state dir. */
async function leftovers(): Promise<string[]> {
  const tmp = await readdir(join(work, 'tmp'));
  const journals = await readdir(join(work, 'state', 'runs')).catch(() => [] as string[]);
  return [...tmp.map((f) => `tmp/${f}`), ...journals.map((f) => `journal ${f}`)];
}

const common = ['--mem', '512', '--accel', 'tcg', '--timeout', '150s'];

describe('tskit run qemu --count', () => {
  it('boots three VMs: three prefixed consoles, three verdicts, a valid JUnit report, exit 0, nothing left', async () => {
    const junit = join(work, 'pass.xml');
    const consoles = join(work, 'consoles');
    const events = join(work, 'pass.ndjson');
    const r = await tskit(['run', 'qemu', ...common, '--count', '3', '--wait-for', 'HELLO-OK', '--junit', junit, '--console-dir', consoles, '--json-file', events, image], {env, timeout: 200_000});
    expect(r.code, r.stderr).toBe(0);
    for (const i of [0, 1, 2]) {
      expect(r.stdout).toMatch(new RegExp(`^hello-${i}\\| HELLO-OK greetings-from-a-files-entry\\r?$`, 'm'));
      expect(r.stderr).toContain(`hello-${i}: --wait-for /HELLO-OK/ matched`);
      // each VM was told its place: the kernel prints its command line
      const log = await readFile(join(consoles, `hello-${i}.log`), 'utf8');
      expect(log).toContain(`tskit.index=${i} tskit.count=3 tskit.ip=10.77.0.${10 + i}/24`);
      expect(log).toContain('HELLO-OK greetings-from-a-files-entry');
    }
    expect(r.stderr).toMatch(/cluster passed: 3 of 3 passed/);

    expect(await junitSchemaErrors(junit, work)).toBe('');
    expect(await xpath(junit, 'string(/testsuites/testsuite/@tests)')).toBe('3');
    expect(await xpath(junit, 'count(//testcase)')).toBe('3');
    expect(await xpath(junit, 'count(//failure) + count(//error)')).toBe('0');
    expect(await xpath(junit, 'string(//testcase[@name="hello-1"]/system-out)')).toContain('HELLO-OK greetings-from-a-files-entry');

    const lines = (await readFile(events, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.every((e) => e.v === 1)).toBe(true);
    const created = lines.filter((e) => e.type === 'instance.created');
    expect(created.map((e) => e.index).sort()).toEqual([0, 1, 2]);
    expect(new Set(created.map((e) => e.runId)).size).toBe(1);
    expect(lines.filter((e) => e.type === 'verdict').map((e) => e.verdict)).toEqual(['matched', 'matched', 'matched']);
    expect(lines.filter((e) => e.type === 'instance.destroyed')).toHaveLength(3);
    expect(lines.at(-1)).toMatchObject({type: 'cluster.verdict', verdict: 'passed', passed: 3, count: 3, minPass: 3, exitCode: 0});
    expect(await leftovers()).toEqual([]);
  });

  it('one VM failing (a --fail-on only its console shows) gives exit 1 and its failure in JUnit; --min-pass 2 lets the cluster pass', async () => {
    const junit = join(work, 'fail.xml');
    // Only hello-1's kernel prints "tskit.index=1 " in its command line.
    const args = [...common, '--count', '3', '--wait-for', 'HELLO-OK', '--fail-on', 'tskit\\.index=1 ', '--junit', junit, image];
    const r = await tskit(['run', 'qemu', ...args], {env, timeout: 200_000});
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/hello-1: --fail-on \/tskit\\\.index=1 \/ matched: .*Command line: .*tskit\.index=1 .*\(exit 1\)/);
    expect(r.stderr).toMatch(/cluster failed: 2 of 3 passed; first failure: hello-1: --fail-on/);
    expect(await junitSchemaErrors(junit, work)).toBe('');
    expect(await xpath(junit, 'string(/testsuites/@failures)')).toBe('1');
    expect(await xpath(junit, 'string(//testcase[@name="hello-1"]/failure/@type)')).toBe('failed-marker');
    expect(await xpath(junit, 'string(//testcase[@name="hello-1"]/failure/@message)')).toMatch(/^--fail-on \/tskit\\\.index=1 \/ matched: /);
    // the failure text carries the console's last lines
    expect(await xpath(junit, 'string(//testcase[@name="hello-1"]/failure)')).toMatch(/last console lines before the verdict:\n[\s\S]*Linux version[\s\S]*Command line: .*tskit\.index=1 /);
    expect(await xpath(junit, 'count(//testcase[@name="hello-0" or @name="hello-2"]/failure)')).toBe('0');
    expect(await leftovers()).toEqual([]);

    const tolerant = await tskit(['run', 'qemu', ...args.filter((a) => a !== junit && a !== '--junit'), '--min-pass', '2'], {env, timeout: 200_000});
    expect(tolerant.code, tolerant.stderr).toBe(0);
    expect(tolerant.stderr).toMatch(/cluster passed: 2 of 3 passed \(at least 2 needed\)/);
  });

  it('tskit test runs a manifest of counts, prints one table and exits with the first failure', async () => {
    const manifest = join(work, 'tests.yml');
    await writeFile(
      manifest,
      [
        'defaults:',
        '  timeout: 150s',
        '  qemu: {mem: 512, accel: tcg}',
        'tests:',
        '  - name: hello',
        '    image: hello',
        '    count: [1, 2]',
        '    wait-for: HELLO-OK',
        '  - name: broken',
        '    image: hello',
        "    fail-on: 'Linux version'",
        '',
      ].join('\n'),
    );
    const junit = join(work, 'manifest.xml');
    const r = await tskit(['test', manifest, '--quiet', '--junit', junit], {env, timeout: 300_000});
    expect(r.code, r.stderr).toBe(1);
    const table = r.stdout.trim().split('\n');
    expect(table[0]).toMatch(/^TEST +PROVIDER +IMAGE +COUNT +PASSED +RESULT +EXIT +TIME +REASON$/);
    expect(table[1]).toMatch(/^hello\[count=1\] +qemu +hello +1 +1\/1 +pass +0 /);
    expect(table[2]).toMatch(/^hello\[count=2\] +qemu +hello +2 +2\/2 +pass +0 /);
    expect(table[3]).toMatch(/^broken +qemu +hello +1 +0\/1 +fail +1 .*--fail-on \/Linux version\/ matched/);
    expect(table[4]).toBe('2 of 3 runs passed');
    expect(await junitSchemaErrors(junit, work)).toBe('');
    expect(await xpath(junit, 'count(//testsuite)')).toBe('3');
    expect(await xpath(junit, 'string(/testsuites/@tests)')).toBe('4');
    expect(await xpath(junit, 'string(//testsuite[@name="broken"]/testcase/failure/@type)')).toBe('failed-marker');
    expect(await leftovers()).toEqual([]);
    expect(existsSync(join(work, 'state', 'runs'))).toBe(true);
  });
});
