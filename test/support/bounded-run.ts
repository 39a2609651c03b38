// Test material: runs the built tskit CLI the way a user does and measures what the run cost
// (wall time, peak RSS), so attack tests assert bounds as limits, not timings that pass by luck.
import {spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {BIN, NODE, ROOT} from './cli.ts';

const PRELOAD = join(ROOT, 'test', 'support', 'report-rss.ts');

export interface BoundedRun {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** Peak resident set size in MiB (undefined when the process died without running its exit hooks). */
  rssMiB: number | undefined;
}

export interface BoundedOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Killed (SIGKILL) after this long; the test then sees signal SIGKILL. */
  killAfterMs?: number;
  /** Called once the child runs, e.g. to signal it. */
  started?: (child: ChildProcess) => void;
}

export async function runBounded(args: string[], options: BoundedOptions = {}): Promise<BoundedRun> {
  const scratch = await mkdtemp(join(tmpdir(), 'tskit-rss-'));
  const rssFile = join(scratch, 'rss');
  const begun = Date.now();
  const child = spawn(NODE, ['--import', PRELOAD, BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: {...process.env, TSKIT_MIRROR: '', ...options.env, TSKIT_TEST_RSS_FILE: rssFile} as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 120_000);
  options.started?.(child);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  const ms = Date.now() - begun;
  const kb = await readFile(rssFile, 'utf8').then(Number, () => undefined);
  await rm(scratch, {recursive: true, force: true});
  return {code: code ?? -1, signal, stdout, stderr, ms, rssMiB: kb === undefined ? undefined : kb / 1024};
}
