// Runs `tskit run qemu` from source in a child process (no build needed), as a user would:
// real signals, real exit codes, stdout and stderr kept apart. Also finds out, from the
// run's own report, which qemu pid and temp dir it had, so tests can prove both are gone.
import {spawn, type ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {join} from 'node:path';
import {repoRoot} from '../support/initrd-busybox.ts';

export interface TskitRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** NDJSON events when run with --json. */
  events: Record<string, unknown>[];
  /** What the run started: from instance.created (--json) or the --verbose report. */
  started: {pid: number; tempDir: string} | undefined;
}

export interface RunningTskit {
  child: ChildProcess;
  /** Resolves once stdout has contained `text`. */
  waitForStdout(text: string | RegExp, timeoutMs?: number): Promise<void>;
  result: Promise<TskitRun>;
}

const runner = `
const {default: RunQemu} = await import(${JSON.stringify(join(repoRoot, 'src/commands/run/qemu.ts'))});
try {
  await RunQemu.run(process.argv.slice(1), ${JSON.stringify(repoRoot)});
} catch (error) {
  const {handle} = await import('@oclif/core');
  await handle(error);
}
`;

export function startTskit(args: readonly string[], options: {stateDir: string; detached?: boolean}): RunningTskit {
  const json = args.includes('--json');
  const argv = json || args.includes('--verbose') ? [...args] : [...args, '--verbose'];
  const started = Date.now();
  const child = spawn(join(repoRoot, 'node_modules/.bin/node'), ['--input-type=module', '-e', runner, '--', ...argv], {
    cwd: repoRoot,
    env: {...process.env, TSKIT_STATE: options.stateDir},
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  const watchers: {test: (s: string) => boolean; resolve: () => void}[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of watchers.splice(0)) (w.test(stdout) ? w.resolve : () => watchers.push(w))();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<TskitRun>((resolve) => {
    child.on('close', (code, signal) => {
      const events = json ? stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
      let detail: {pid: number; tempDir: string} | undefined;
      const created = events.find((e) => e.type === 'instance.created');
      if (created) detail = created.detail as {pid: number; tempDir: string};
      const verbose = /started qemu instance \S+ (\{.*\})/.exec(stderr);
      if (verbose) detail = JSON.parse(verbose[1]!) as {pid: number; tempDir: string};
      resolve({code, signal, stdout, stderr, ms: Date.now() - started, events, started: detail});
    });
  });
  return {
    child,
    result,
    waitForStdout(text, timeoutMs = 60_000) {
      const test = (s: string): boolean => (typeof text === 'string' ? s.includes(text) : text.test(s));
      if (test(stdout)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stdout never showed ${text}; stderr: ${stderr}`)), timeoutMs);
        watchers.push({test, resolve: () => (clearTimeout(timer), resolve())});
        void result.then(() => reject(new Error(`tskit ended before stdout showed ${text}; stderr: ${stderr}`)));
      });
    },
  };
}

export function tskit(args: readonly string[], options: {stateDir: string}): Promise<TskitRun> {
  return startTskit(args, options).result;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Asserts nothing of the run is left: its qemu process and its temp dir. */
export function leftovers(run: TskitRun): string[] {
  if (!run.started) return ['the run did not report what it started'];
  const left: string[] = [];
  if (alive(run.started.pid)) left.push(`qemu pid ${run.started.pid} is still running`);
  if (existsSync(run.started.tempDir)) left.push(`temp dir ${run.started.tempDir} still exists`);
  return left;
}
