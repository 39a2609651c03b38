// Runs a `tskit test` manifest's runs (src/run/test-manifest.ts), each as one run session, at
// most `jobs` at a time, and reports each result as a `test.result` event. The exit code is
// the first failing run's, in manifest order (an interruption wins); 0 when every run passed.
import type {Emit} from '../events.ts';
import type {Instance} from '../provider.ts';
import {ExitCode} from './exit-codes.ts';
import {loadProvider} from './provider-registry.ts';
import {runSession, type SessionResult} from './session.ts';
import {exitCodeForAbort} from './signals.ts';
import type {TestRun} from './test-manifest.ts';

export interface TestRunResult {
  run: TestRun;
  /** Absent when the run could not start (the provider's check or start failed: `error`). */
  session?: SessionResult;
  error?: string;
  exitCode: number;
  reason: string;
  startedAt: Date;
  durationMs: number;
}

export interface TestRunsOptions {
  runs: readonly TestRun[];
  /** Runs at once (default 1: on a small machine VMs are better booted a cluster at a time). */
  jobs?: number;
  emit: Emit;
  onConsole?: (instance: Instance, chunk: Uint8Array) => void;
  signal?: AbortSignal;
  hurry?: AbortSignal;
  stateDir?: string;
}

export interface TestRunsResult {
  results: TestRunResult[];
  exitCode: number;
}

export async function runTests(options: TestRunsOptions): Promise<TestRunsResult> {
  const results: TestRunResult[] = new Array(options.runs.length);
  let next = 0;
  const one = async (index: number): Promise<void> => {
    const run = options.runs[index]!;
    const startedAt = new Date();
    const finish = (r: Omit<TestRunResult, 'run' | 'startedAt' | 'durationMs'>): void => {
      results[index] = {run, startedAt, durationMs: Date.now() - startedAt.getTime(), ...r};
      const s = r.session;
      options.emit({
        type: 'test.result',
        test: run.name,
        provider: run.provider,
        image: run.image,
        count: run.count,
        passed: s?.passed ?? 0,
        minPass: s?.minPass ?? run.minPass ?? run.count,
        exitCode: r.exitCode,
        reason: r.reason,
        ...(s ? {runId: s.runId} : {}),
        durationMs: results[index]!.durationMs,
      });
    };
    if (options.signal?.aborted) {
      return finish({exitCode: exitCodeForAbort(options.signal), reason: `${(options.signal.reason as Error | undefined)?.message ?? 'interrupted'} before it started`});
    }
    try {
      const provider = await loadProvider(run.provider);
      const session = await runSession({
        provider,
        image: {provider: run.provider, id: run.imageId},
        runOptions: run.runOptions,
        name: run.instanceName,
        count: run.count,
        ...(run.parallel === undefined ? {} : {parallel: run.parallel}),
        ...(run.minPass === undefined ? {} : {minPass: run.minPass}),
        waitFor: run.waitFor,
        failOn: run.failOn,
        ...(run.timeoutMs === undefined ? {} : {timeoutMs: run.timeoutMs}),
        ...(run.userData === undefined ? {} : {userData: run.userData}),
        emit: options.emit,
        ...(options.onConsole ? {onConsole: options.onConsole} : {}),
        ...(options.signal ? {signal: options.signal} : {}),
        ...(options.hurry ? {hurry: options.hurry} : {}),
        ...(options.stateDir ? {stateDir: options.stateDir} : {}),
        command: `test ${run.name}`,
      });
      finish({session, exitCode: session.exitCode, reason: session.reason});
    } catch (error) {
      const code = (error as {exitCode?: number}).exitCode;
      finish({error: (error as Error).message, exitCode: typeof code === 'number' && code !== 0 ? code : ExitCode.providerError, reason: (error as Error).message});
    }
  };
  const jobs = Math.max(1, Math.min(options.jobs ?? 1, options.runs.length));
  await Promise.all(
    Array.from({length: jobs}, async () => {
      while (next < options.runs.length) await one(next++);
    }),
  );
  if (options.signal?.aborted) return {results, exitCode: exitCodeForAbort(options.signal)};
  return {results, exitCode: results.find((r) => r.exitCode !== 0)?.exitCode ?? ExitCode.ok};
}
