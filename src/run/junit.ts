// JUnit XML for CI (`--junit FILE`): one <testsuite> per run (a `tskit test` manifest gives
// several), one <testcase> per instance. The shape is the one GitLab, GitHub Actions' JUnit
// reporters and Jenkins all read: <testsuites> at the root, counts and times on every suite,
// a <failure> (the guest failed: a --fail-on line, a panic, a timeout, a bad exit) or an
// <error> (tskit could not run it, or the run was interrupted) with the verdict as `type`,
// the reason as `message` and the console's last lines as text, and the console's end in
// each test case's <system-out>. Console text has its escapes removed and anything XML 1.0
// cannot carry dropped.
import {hostname} from 'node:os';
import type {Verdict} from '../events.ts';
import {stripAnsi} from './markers.ts';
import type {SessionResult} from './session.ts';

export interface JunitCase {
  name: string;
  classname: string;
  timeSeconds: number;
  /** `failure`: the guest failed; `error`: tskit could not run it or it was interrupted. */
  status: 'passed' | 'failure' | 'error';
  verdict: Verdict;
  message: string;
  /** The console's end, for system-out. */
  console: string;
  /** The console's end when the verdict fell, for the failure text (its last lines). */
  consoleAtVerdict: string;
}

export interface JunitSuite {
  name: string;
  timestamp: Date;
  timeSeconds: number;
  hostname?: string;
  properties: Record<string, string>;
  cases: JunitCase[];
}

/** Lines of console in a failure's text; the whole kept tail goes to system-out. */
const FAILURE_LINES = 60;

const FAILURES: ReadonlySet<Verdict> = new Set(['failed-marker', 'panic', 'timeout', 'exited']);

/** A suite for one session: a test case per instance, named as its console prefix. */
export function junitSuite(result: SessionResult, options: {name: string; classname: string; properties?: Record<string, string>}): JunitSuite {
  return {
    name: options.name,
    timestamp: result.startedAt,
    timeSeconds: result.durationMs / 1000,
    properties: {'tskit.run-id': result.runId, 'tskit.count': String(result.count), 'tskit.min-pass': String(result.minPass), 'tskit.exit-code': String(result.exitCode), ...options.properties},
    cases: result.outcomes.map((o) => ({
      name: o.name,
      classname: options.classname,
      timeSeconds: o.durationMs / 1000,
      status: o.exitCode === 0 ? 'passed' : FAILURES.has(o.verdict) ? 'failure' : 'error',
      verdict: o.verdict,
      message: o.reason,
      console: o.consoleTail,
      consoleAtVerdict: o.consoleAtVerdict,
    })),
  };
}

/** A suite for a run that failed before it had instances (the provider's error). */
export function junitErrorSuite(options: {name: string; classname: string; caseName: string; message: string; startedAt: Date; verdict?: Verdict; properties?: Record<string, string>}): JunitSuite {
  return {
    name: options.name,
    timestamp: options.startedAt,
    timeSeconds: (Date.now() - options.startedAt.getTime()) / 1000,
    properties: options.properties ?? {},
    cases: [{name: options.caseName, classname: options.classname, timeSeconds: 0, status: 'error', verdict: options.verdict ?? 'provider-error', message: options.message, console: '', consoleAtVerdict: ''}],
  };
}

export function junitXml(suites: readonly JunitSuite[], name = 'tskit'): string {
  const count = (s: JunitSuite, status: JunitCase['status']) => s.cases.filter((c) => c.status === status).length;
  const total = (f: (s: JunitSuite) => number) => suites.reduce((n, s) => n + f(s), 0);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="${attr(name)}" tests="${total((s) => s.cases.length)}" failures="${total((s) => count(s, 'failure'))}" errors="${total((s) => count(s, 'error'))}" skipped="0" time="${seconds(total((s) => s.timeSeconds))}">`,
  );
  for (const [id, suite] of suites.entries()) {
    out.push(
      `  <testsuite name="${attr(suite.name)}" id="${id}" tests="${suite.cases.length}" failures="${count(suite, 'failure')}" errors="${count(suite, 'error')}" skipped="0" time="${seconds(suite.timeSeconds)}" timestamp="${suite.timestamp.toISOString().slice(0, 19)}" hostname="${attr(suite.hostname ?? hostname())}">`,
    );
    const props = Object.entries(suite.properties);
    if (props.length > 0) {
      out.push('    <properties>');
      for (const [key, value] of props) out.push(`      <property name="${attr(key)}" value="${attr(value)}"/>`);
      out.push('    </properties>');
    }
    for (const c of suite.cases) {
      out.push(`    <testcase name="${attr(c.name)}" classname="${attr(c.classname)}" time="${seconds(c.timeSeconds)}">`);
      const consoleText = cleanConsole(c.console);
      if (c.status !== 'passed') {
        const lastLines = cleanConsole(c.consoleAtVerdict).split('\n').slice(-FAILURE_LINES - 1).join('\n').trimEnd();
        const body = `${c.message}${lastLines ? `\n\nlast console lines before the verdict:\n${lastLines}` : ''}`;
        out.push(`      <${c.status} message="${attr(c.message)}" type="${attr(c.verdict)}">${text(body)}</${c.status}>`);
      }
      if (consoleText) out.push(`      <system-out>${text(consoleText)}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}

/** Console text as a report shows it: escapes removed, CRLF as LF, nothing XML 1.0 forbids. */
export function cleanConsole(console: string): string {
  return xmlChars(stripAnsi(console.replace(/\r+\n/g, '\n')).replace(/\r/g, '\n'));
}

function seconds(s: number): string {
  return (Math.round(s * 1000) / 1000).toFixed(3);
}

// XML 1.0 allows tab, LF, CR and U+0020 upwards, less the surrogates and U+FFFE/U+FFFF.
// eslint-disable-next-line no-control-regex
const forbidden = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function xmlChars(s: string): string {
  return s.replace(forbidden, '');
}

function text(s: string): string {
  return xmlChars(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
