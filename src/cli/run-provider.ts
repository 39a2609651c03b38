// What every `tskit run <provider>` command does around its provider: the shared flags
// (markers, timeout, console outputs, clusters, reports), stdout that may close under it,
// rendering, the run loop, the JUnit report and the exit code. A command adds only its
// provider's own flags and options.
import {Flags} from '@oclif/core';
import type {ImageRef, Provider} from '../provider.ts';
import {parseDuration} from '../run/duration.ts';
import {compileMarker} from '../run/markers.ts';
import {runSession, slotName, type SessionOptions} from '../run/session.ts';
import type {InterruptTrap} from '../run/signals.ts';
import {clusterFlags, clusterSessionOptions, prepareClusterOutputs, useColour, writeJunitReport, type ClusterFlagValues, type ClusterSessionOptions} from './cluster-flags.ts';
import {createConsoleRenderer, type ConsoleRenderer} from './console-render.ts';

export const runFlags = {
  'wait-for': Flags.string({description: 'exit 0 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
  'fail-on': Flags.string({description: 'exit 1 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
  timeout: Flags.string({description: 'give up after this long and exit 124 (90s, 5m, 1h30m, or seconds)'}),
  'console-file': Flags.string({description: 'also write the raw console to this file'}),
  json: Flags.boolean({description: 'print NDJSON events (console, matched, verdict, ...) on stdout instead of the console'}),
  ...clusterFlags,
};

export interface RunFlagValues extends ClusterFlagValues {
  'wait-for'?: string[];
  'fail-on'?: string[];
  timeout?: string;
  'console-file'?: string;
  json: boolean;
  verbose?: boolean;
}

export interface ProviderRun<RunOpts> {
  /** `run qemu`: named in the journal and the JUnit suite. */
  command: string;
  provider: Provider<unknown, RunOpts>;
  image: ImageRef;
  flags: RunFlagValues;
  interrupts: InterruptTrap;
  /** The provider's run options; may refuse a combination with the cluster's (a TskitError). */
  runOptions(cluster: ClusterSessionOptions): RunOpts | Promise<RunOpts>;
  /** Run-loop settings a provider needs (a polled console's drain time, say). */
  session?: Partial<SessionOptions<RunOpts>>;
  /** Gets the renderer once it exists (a provider that reports outside the run loop's events). */
  onRenderer?(renderer: ConsoleRenderer): void;
}

export async function runProvider<RunOpts>(run: ProviderRun<RunOpts>): Promise<void> {
  const {flags, interrupts, image} = run;
  let renderer: ConsoleRenderer | undefined;
  try {
    // `tskit run ... | head`: when the reader goes, stop the run as a SIGPIPE would.
    let stdoutGone = false;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' || stdoutGone) return;
      stdoutGone = true;
      interrupts.raise('SIGPIPE');
    });
    const stdout = {write: (chunk: string | Uint8Array) => stdoutGone || process.stdout.write(chunk)};
    const cluster = await clusterSessionOptions(flags);
    const names = Array.from({length: cluster.count}, (_, i) => slotName(image, i, cluster.count));
    const waitFor = (flags['wait-for'] ?? []).map((s) => compileMarker(s, '--wait-for'));
    const failOn = (flags['fail-on'] ?? []).map((s) => compileMarker(s, '--fail-on'));
    const timeoutMs = flags.timeout ? parseDuration(flags.timeout, '--timeout') : undefined;
    const runOptions = await run.runOptions(cluster);
    await prepareClusterOutputs(flags);
    renderer = createConsoleRenderer({
      json: flags.json,
      stdout,
      stderr: process.stderr,
      verbose: flags.verbose ?? false,
      consoleFile: flags['console-file'],
      ...(flags['console-dir'] ? {consoleDir: flags['console-dir']} : {}),
      ...(flags['json-file'] ? {jsonFile: flags['json-file']} : {}),
      ...(cluster.count > 1 ? {names} : {}),
      colour: useColour(),
    });
    run.onRenderer?.(renderer);
    const render = renderer;
    const started = new Date();
    const junit = {file: flags.junit, suite: `tskit ${run.command} ${image.id}`, classname: `tskit.${run.provider.name}.${names[0]!.replace(/-0$/, '')}`};
    const result = await writeJunitReport(junit, started, names[0]!, () =>
      runSession({
        provider: run.provider,
        image,
        runOptions,
        ...cluster,
        command: run.command,
        waitFor,
        failOn,
        ...(timeoutMs === undefined ? {} : {timeoutMs}),
        emit: render.emit,
        onConsole: render.onConsole,
        signal: interrupts.stop,
        hurry: interrupts.hurry,
        ...run.session,
      }),
    );
    // Without instances there was no verdict event to say why (interrupted or timed out while starting).
    if (result.outcomes.length === 0 && !flags.json) process.stderr.write(`tskit: ${result.reason}\n`);
    process.exitCode = result.exitCode;
  } finally {
    renderer?.close();
  }
}
