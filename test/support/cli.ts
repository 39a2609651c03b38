// Runs the built tskit CLI the way a user does (bin/run.js on the project's Node 24) and
// captures what it printed and how it exited. Test material.
import {execFile, spawn} from 'node:child_process';
import {readdir, readFile, stat} from 'node:fs/promises';
import {join} from 'node:path';
import {promisify} from 'node:util';

const execFileP = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export const NODE = join(ROOT, 'node_modules', '.bin', 'node');
export const BIN = join(ROOT, 'bin', 'run.js');

export interface Ran {
  code: number;
  signal?: string | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeout?: number;
  input?: string | Buffer;
}

/** Runs `tskit ARGS...`; never throws for a non-zero exit. */
export function tskit(args: string[], options: RunOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: {...process.env, TSKIT_MIRROR: '', ...options.env} as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code: code ?? -1, signal, stdout, stderr});
    });
    child.stdin.end(options.input ?? '');
  });
}

export const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** Builds dist/ when it is missing or older than the sources (npm test builds first; vitest alone may not). */
export async function ensureBuilt(): Promise<void> {
  const newest = async (dir: string): Promise<number> => {
    let latest = 0;
    for (const entry of await readdir(dir, {withFileTypes: true})) {
      const path = join(dir, entry.name);
      latest = Math.max(latest, entry.isDirectory() ? await newest(path) : (await stat(path)).mtimeMs);
    }
    return latest;
  };
  const built = await stat(join(ROOT, 'oclif.manifest.json')).then((s) => s.mtimeMs, () => 0);
  const sources = Math.max(await newest(join(ROOT, 'src')), await newest(join(ROOT, 'providers')).catch(() => 0));
  const manifest = await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8').catch(() => '');
  if (built < sources || !manifest.includes('"build"')) await execFileP('npm', ['run', 'build'], {cwd: ROOT, timeout: 300_000});
}
