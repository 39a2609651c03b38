// `tskit validate`: output format, exit status, --merge, --json, --quiet.
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import Validate from '../../../src/commands/validate.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;
let base: string;
let extra: string;
let bad: string;

async function run(argv: string[]): Promise<{stdout: string; stderr: string; code: number}> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await Validate.run(argv, root);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return {stdout, stderr, code};
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-validate-'));
  base = join(dir, 'base.yml');
  extra = join(dir, 'extra.yml');
  bad = join(dir, 'bad.yml');
  await writeFile(base, 'volumes:\n  - name: data\nonboot:\n  - {name: a, image: alpine}\n');
  await writeFile(extra, 'services:\n  - {name: s, image: alpine, binds: ["data:/data"], uid: a}\n');
  await writeFile(bad, 'services:\n  - name: s\n    image: alpine\n    readonly: yes\n');
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('tskit validate', () => {
  it('prints FILE: ok per good file and problems as file:line:col to stderr, exit 1', async () => {
    const r = await run([base, bad]);
    expect(r.stdout).toBe(`${base}: ok\n`);
    expect(r.stderr).toBe(`${bad}:4:15: services[0].readonly: expected a boolean (true or false), got a string ("yes")\n`);
    expect(r.code).toBe(1);
  });

  it('checks files on their own unless --merge', async () => {
    const alone = await run([base, extra]);
    expect(alone.stderr).toBe(
      `${extra}:2:38: volume "data" is not declared in volumes (a bind source not starting with "/" names a volume)\n` +
        `${extra}:2:58: uid "a" is not a number, "root", or the name of an onboot, onshutdown or service container\n`,
    );
    expect(alone.code).toBe(1);
    const merged = await run(['--merge', base, extra]);
    expect(merged).toEqual({stdout: `${base}: ok\n${extra}: ok\n`, stderr: '', code: 0});
  });

  it('--quiet prints nothing for good files; --json prints NDJSON', async () => {
    expect(await run(['-q', base])).toEqual({stdout: '', stderr: '', code: 0});
    const r = await run(['--json', base, bad, join(dir, 'missing.yml')]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      {type: 'problem', file: bad, line: 4, col: 15, message: 'services[0].readonly: expected a boolean (true or false), got a string ("yes")'},
      {type: 'problem', file: join(dir, 'missing.yml'), line: 0, col: 0, message: 'cannot read config file: no such file'},
      {type: 'ok', file: base},
    ]);
  });
});
