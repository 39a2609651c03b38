// The flags every `tskit run <provider>` command shares for clusters and CI reports (--count,
// --parallel, --min-pass, --junit, --console-dir, --json-file, --user-data, --run-id), and
// what they turn into: session options, the console directory, the JUnit file.
import {readFile, rename, rm, stat, writeFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import {Flags} from '@oclif/core';
import {TskitError} from '../errors.ts';
import {junitErrorSuite, junitSuite, junitXml, type JunitSuite} from '../run/junit.ts';
import type {SessionResult} from '../run/session.ts';
import {ensureDir} from '../run/state-dir.ts';

export const clusterFlags = {
  count: Flags.integer({description: 'boot this many instances together as a cluster; each gets its own verdict', min: 1, default: 1, helpValue: 'N'}),
  parallel: Flags.integer({description: 'start at most this many instances at once (default: all)', min: 1, helpValue: 'P'}),
  'min-pass': Flags.integer({description: 'the cluster passes when at least K instances pass (default: all)', min: 0, helpValue: 'K'}),
  junit: Flags.string({description: 'write a JUnit XML report here (a test case per instance, console tail in failures)', helpValue: 'FILE'}),
  'console-dir': Flags.string({description: "write each instance's raw console to DIR/NAME.log", helpValue: 'DIR'}),
  'json-file': Flags.string({description: 'also write the NDJSON events (as --json prints them) to FILE', helpValue: 'FILE'}),
  'user-data': Flags.string({description: 'user data for every instance (cloud-init / LinuxKit metadata), beside the metadata tskit adds', helpValue: 'FILE'}),
  'run-id': Flags.string({description: 'name the run (journal, cloud tags, reports) instead of a generated id: letters, digits, dots, dashes', helpValue: 'ID'}),
};

export interface ClusterFlagValues {
  count: number;
  parallel?: number;
  'min-pass'?: number;
  junit?: string;
  'console-dir'?: string;
  'json-file'?: string;
  'user-data'?: string;
  'run-id'?: string;
}

export interface ClusterSessionOptions {
  count: number;
  parallel?: number;
  minPass?: number;
  runId?: string;
  userData?: string;
}

export async function clusterSessionOptions(flags: ClusterFlagValues): Promise<ClusterSessionOptions> {
  if (flags['min-pass'] !== undefined && flags['min-pass'] > flags.count) {
    throw new TskitError(`--min-pass ${flags['min-pass']} is more than --count ${flags.count}`, {exitCode: 2});
  }
  if (flags['run-id'] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(flags['run-id'])) {
    throw new TskitError(`--run-id "${flags['run-id']}": use up to 63 letters, digits, dots, dashes and underscores`, {exitCode: 2});
  }
  let userData: string | undefined;
  if (flags['user-data'] !== undefined) {
    userData = await readFile(flags['user-data'], 'utf8').catch((error: Error) => {
      throw new TskitError(`--user-data ${flags['user-data']}: ${error.message}`, {exitCode: 2});
    });
  }
  return {
    count: flags.count,
    ...(flags.parallel === undefined ? {} : {parallel: flags.parallel}),
    ...(flags['min-pass'] === undefined ? {} : {minPass: flags['min-pass']}),
    ...(flags['run-id'] === undefined ? {} : {runId: flags['run-id']}),
    ...(userData === undefined ? {} : {userData}),
  };
}

/** Creates --console-dir and checks that --junit's and --json-file's directories exist, before anything starts. */
export async function prepareClusterOutputs(flags: {'console-dir'?: string; junit?: string; 'json-file'?: string}): Promise<void> {
  if (flags['console-dir']) {
    const dir = flags['console-dir'];
    if (/^\/(proc|sys)(\/|$)/.test(dir)) throw new TskitError(`--console-dir ${dir}: not a place for console files`, {exitCode: 2});
    await ensureDir(dir).catch((error: Error) => {
      throw new TskitError(`--console-dir ${dir}: ${error.message}`, {exitCode: 2});
    });
  }
  for (const [flag, file] of [['--junit', flags.junit], ['--json-file', flags['json-file']]] as const) {
    if (!file) continue;
    const isDir = await stat(dirname(file)).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new TskitError(`${flag} ${file}: the directory ${dirname(file)} does not exist`, {exitCode: 2});
  }
}

/** Colour when stdout is a terminal, unless NO_COLOR says otherwise (FORCE_COLOR forces it). */
export function useColour(env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean(isTTY);
}

/** Writes text under a temporary name beside FILE and renames it: never a half-written report. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(temp, text);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, {force: true});
    throw new TskitError(`cannot write ${file}: ${(error as Error).message}`);
  }
}

export async function writeJunitFile(file: string, suites: readonly JunitSuite[], name?: string): Promise<void> {
  await writeFileAtomically(file, junitXml(suites, name));
}

/**
 * Runs the session and writes `junit.file` (when set) from its result, also when the run
 * fails before it has instances (one test case with the error), then returns or rethrows.
 */
export async function writeJunitReport(junit: {file?: string; suite: string; classname: string}, started: Date, caseName: string, run: () => Promise<SessionResult>): Promise<SessionResult> {
  let result: SessionResult;
  try {
    result = await run();
  } catch (error) {
    if (junit.file) await writeJunitFile(junit.file, [junitErrorSuite({name: junit.suite, classname: junit.classname, caseName, message: (error as Error).message, startedAt: started})]);
    throw error;
  }
  if (junit.file) {
    const suite = result.outcomes.length > 0 ? junitSuite(result, {name: junit.suite, classname: junit.classname}) : junitErrorSuite({name: junit.suite, classname: junit.classname, caseName, message: result.reason, startedAt: started, verdict: result.exitCode === 124 ? 'timeout' : 'interrupted', properties: {'tskit.run-id': result.runId}});
    await writeJunitFile(junit.file, [suite]);
  }
  return result;
}
