// `tskit test FILE`: run a manifest of images × providers × counts with their markers, print
// one table, exit with one code. The manifest is src/run/test-manifest.ts, the runs
// src/run/test-runs.ts; this file only wires flags and renders.
import {Args, Flags} from '@oclif/core';
import {TskitCommand} from '../cli/command.ts';
import {prepareClusterOutputs, useColour, writeJunitFile} from '../cli/cluster-flags.ts';
import {createConsoleRenderer, type ConsoleRenderer} from '../cli/console-render.ts';
import {formatDuration} from '../run/duration.ts';
import {junitErrorSuite, junitSuite} from '../run/junit.ts';
import {trapInterrupts} from '../run/signals.ts';
import {loadTestManifest} from '../run/test-manifest.ts';
import {runTests, type TestRunResult} from '../run/test-runs.ts';
import {TskitError} from '../errors.ts';

export default class Test extends TskitCommand {
  static override summary = 'Run a test manifest: images × providers × counts, their markers and timeouts; one table, one exit code';

  static override description = `FILE is a YAML manifest (see docs/providers.md, "Test manifests"):

  defaults:
    timeout: 2m
    fail-on: 'Kernel panic|FAIL'
    qemu: {mem: 512}
  tests:
    - name: hello
      image: out/hello          # relative to the manifest's directory
      count: [1, 3]             # image, provider and count may list several: every combination runs
      wait-for: HELLO-OK

Each run is a \`tskit run\` of its own (its own run id, journal and cluster network). Consoles are shown prefixed with the instance name (--quiet: only the verdicts and the table). The exit code is 0 when every run passed, else the first failing run's code (1 a guest failed, 124 a timeout, 125 a provider error), 130/143 when interrupted.`;

  static override examples = ['<%= config.bin %> test tests/cluster.yml', '<%= config.bin %> test tests/cluster.yml --junit out/junit.xml --console-dir out/consoles --quiet'];

  static override args = {
    file: Args.string({description: 'the manifest (a path, - for stdin, or an https URL)', required: true}),
  };

  static override flags = {
    only: Flags.string({description: 'run only the tests with this name (repeatable)', multiple: true, multipleNonGreedy: true, helpValue: 'NAME'}),
    jobs: Flags.integer({char: 'j', description: 'runs at once (default 1)', min: 1, default: 1}),
    junit: Flags.string({description: 'write a JUnit XML report: a test suite per run, a test case per instance', helpValue: 'FILE'}),
    'console-dir': Flags.string({description: "write each instance's raw console to DIR/NAME.log", helpValue: 'DIR'}),
    'json-file': Flags.string({description: 'also write the NDJSON events to FILE', helpValue: 'FILE'}),
    quiet: Flags.boolean({char: 'q', description: 'do not show the consoles, only verdicts and the table'}),
    json: Flags.boolean({description: 'print NDJSON events (test.result per run) on stdout instead of consoles and the table'}),
    verbose: Flags.boolean({char: 'v', description: 'also report lifecycle and hypervisor details on stderr'}),
  };

  async run(): Promise<void> {
    const interrupts = trapInterrupts();
    let renderer: ConsoleRenderer | undefined;
    try {
      const {args, flags} = await this.parse(Test);
      const manifest = await loadTestManifest(args.file);
      const only = flags.only ?? [];
      for (const name of only) {
        if (!manifest.runs.some((r) => r.test === name)) throw new TskitError(`--only ${name}: no such test in ${manifest.file} (tests: ${[...new Set(manifest.runs.map((r) => r.test))].join(', ')})`, {exitCode: 2});
      }
      const runs = only.length ? manifest.runs.filter((r) => only.includes(r.test)) : manifest.runs;
      await prepareClusterOutputs(flags);
      const render = createConsoleRenderer({
        json: flags.json,
        stdout: process.stdout,
        stderr: process.stderr,
        verbose: flags.verbose,
        alwaysPrefix: true,
        showConsole: !flags.quiet,
        colour: useColour(),
        ...(flags['console-dir'] ? {consoleDir: flags['console-dir']} : {}),
        ...(flags['json-file'] ? {jsonFile: flags['json-file']} : {}),
      });
      renderer = render;
      const outcome = await runTests({runs, jobs: flags.jobs, emit: render.emit, onConsole: render.onConsole, signal: interrupts.stop, hurry: interrupts.hurry});
      render.close();
      if (flags.junit) {
        await writeJunitFile(
          flags.junit,
          outcome.results.filter(Boolean).map((r) =>
            r.session && r.session.outcomes.length > 0
              ? junitSuite(r.session, {name: r.run.name, classname: `tskit.${r.run.provider}.${r.run.test}`, properties: {'tskit.image': r.run.image, 'tskit.provider': r.run.provider}})
              : junitErrorSuite({name: r.run.name, classname: `tskit.${r.run.provider}.${r.run.test}`, caseName: r.run.instanceName, message: r.reason, startedAt: r.startedAt, verdict: r.exitCode === 124 ? 'timeout' : r.exitCode >= 128 ? 'interrupted' : 'provider-error'}),
          ),
          `tskit test ${manifest.file}`,
        );
      }
      if (!flags.json) process.stdout.write(resultTable(outcome.results.filter(Boolean)));
      process.exitCode = outcome.exitCode;
    } finally {
      renderer?.close();
      interrupts.dispose();
    }
  }
}

/** The table `tskit test` ends with: a line per run. */
export function resultTable(results: readonly TestRunResult[]): string {
  const rows = results.map((r) => {
    const s = r.session;
    const result = r.exitCode === 0 ? 'pass' : r.exitCode === 124 ? 'timeout' : r.exitCode >= 128 ? 'interrupted' : r.error ? 'error' : 'fail';
    return [r.run.name, r.run.provider, r.run.image, String(r.run.count), s ? `${s.passed}/${s.outcomes.length || r.run.count}` : `0/${r.run.count}`, result, String(r.exitCode), formatDuration(r.durationMs), r.exitCode === 0 ? '' : oneLine(r.reason)];
  });
  const header = ['TEST', 'PROVIDER', 'IMAGE', 'COUNT', 'PASSED', 'RESULT', 'EXIT', 'TIME', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const passed = results.filter((r) => r.exitCode === 0).length;
  return `\n${[line(header), ...rows.map(line)].join('\n')}\n${passed} of ${results.length} runs passed\n`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}
