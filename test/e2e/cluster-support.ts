// Test material for the cluster tests: a JUnit XML Schema (the structure GitLab, GitHub
// Actions' JUnit reporters and Jenkins read: <testsuites> of <testsuite>s with counts, times,
// ISO timestamps and hostnames, <properties>, <testcase>s with at most one <failure>/<error>/
// <skipped> and their own <system-out>), checked with libxml2's xmllint; XPath queries on
// reports; and a way to run the built tskit with real signals and NDJSON events.
import {execFile, spawn, type ChildProcess} from 'node:child_process';
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {BIN, NODE, ROOT} from '../support/cli.ts';
import {alive} from './run-qemu-support.ts';

const run = promisify(execFile);

export const JUNIT_XSD = `<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:simpleType name="name">
    <xs:restriction base="xs:token"><xs:minLength value="1"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="timestamp">
    <xs:restriction base="xs:dateTime">
      <xs:pattern value="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="problem">
    <xs:simpleContent>
      <xs:extension base="xs:string">
        <xs:attribute name="message" type="xs:string" use="required"/>
        <xs:attribute name="type" type="name" use="required"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="testsuite" minOccurs="1" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="properties" minOccurs="0">
                <xs:complexType>
                  <xs:sequence>
                    <xs:element name="property" maxOccurs="unbounded">
                      <xs:complexType>
                        <xs:attribute name="name" type="name" use="required"/>
                        <xs:attribute name="value" type="xs:string" use="required"/>
                      </xs:complexType>
                    </xs:element>
                  </xs:sequence>
                </xs:complexType>
              </xs:element>
              <xs:element name="testcase" minOccurs="0" maxOccurs="unbounded">
                <xs:complexType>
                  <xs:sequence>
                    <xs:choice minOccurs="0">
                      <xs:element name="skipped"><xs:complexType><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
                      <xs:element name="error" type="problem"/>
                      <xs:element name="failure" type="problem"/>
                    </xs:choice>
                    <xs:element name="system-out" type="xs:string" minOccurs="0"/>
                    <xs:element name="system-err" type="xs:string" minOccurs="0"/>
                  </xs:sequence>
                  <xs:attribute name="name" type="name" use="required"/>
                  <xs:attribute name="classname" type="name" use="required"/>
                  <xs:attribute name="time" type="xs:decimal" use="required"/>
                </xs:complexType>
              </xs:element>
              <xs:element name="system-out" type="xs:string" minOccurs="0"/>
              <xs:element name="system-err" type="xs:string" minOccurs="0"/>
            </xs:sequence>
            <xs:attribute name="name" type="name" use="required"/>
            <xs:attribute name="id" type="xs:nonNegativeInteger"/>
            <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
            <xs:attribute name="time" type="xs:decimal" use="required"/>
            <xs:attribute name="timestamp" type="timestamp" use="required"/>
            <xs:attribute name="hostname" type="name" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="xs:decimal"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
`;

/** Validates a JUnit file with xmllint against JUNIT_XSD; returns xmllint's complaint, or '' when valid. */
export async function junitSchemaErrors(file: string, dir: string): Promise<string> {
  const xsd = join(dir, 'junit.xsd');
  await writeFile(xsd, JUNIT_XSD);
  try {
    await run('xmllint', ['--noout', '--schema', xsd, file]);
    return '';
  } catch (error) {
    return String((error as {stderr?: string}).stderr ?? error);
  }
}

/** The string value of an XPath expression over the file (xmllint --xpath 'string(...)'). */
export async function xpath(file: string, expression: string): Promise<string> {
  const {stdout} = await run('xmllint', ['--xpath', expression, file]);
  // xmllint ends what it prints with a newline of its own
  return stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout;
}

export interface ClusterRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: Record<string, unknown>[];
}

export interface RunningCluster {
  child: ChildProcess;
  /** Resolves once the events include `count` of type `type` (e.g. 3 instance.created). */
  waitForEvents(type: string, count: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  result: Promise<ClusterRun>;
}

/** Starts the built `tskit ARGS` (add --json to get events) with env overrides; never throws for a non-zero exit. */
export function startCluster(args: readonly string[], env: Record<string, string>): RunningCluster {
  const child = spawn(NODE, [BIN, ...args], {cwd: ROOT, env: {...process.env, TSKIT_MIRROR: '', ...env}, stdio: ['ignore', 'pipe', 'pipe']});
  let stdout = '';
  let stderr = '';
  const parse = (): Record<string, unknown>[] =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  const watchers: (() => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of [...watchers]) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<ClusterRun>((resolve) => child.on('close', (code, signal) => resolve({code, signal, stdout, stderr, events: parse()})));
  return {
    child,
    result,
    waitForEvents(type, count, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${count} ${type} events within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        const check = (): void => {
          const found = parse().filter((e) => e.type === type);
          if (found.length >= count) {
            clearTimeout(timer);
            watchers.splice(watchers.indexOf(check), 1);
            resolve(found);
          }
        };
        watchers.push(check);
        void result.then(() => reject(new Error(`tskit ended before ${count} ${type} events; stderr: ${stderr}`)));
        check();
      });
    },
  };
}

/** Waits until none of the pids runs (qemu leaves within a moment of its parent's death), up to `ms`. */
export async function waitGone(pids: readonly number[], ms = 10_000): Promise<number[]> {
  const until = Date.now() + ms;
  while (Date.now() < until && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}
