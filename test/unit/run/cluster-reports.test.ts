// Reports and inputs of clusters: JUnit XML checked by xmllint against a JUnit XML Schema
// (with what consoles throw at it: escapes, control bytes, markup), the `tskit test` manifest
// (expansion, defaults, every problem at its line and column), the guest metadata, and the
// cluster switch forwarding real frames between Unix-socket ports.
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {connect, type Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ClusterSwitch} from '../../../providers/qemu/cluster-switch.ts';
import {cmdlineWords, seedFiles, type GuestMetadata} from '../../../providers/qemu/guest-metadata.ts';
import {userDataWithMetadata} from '../../../src/run/guest-metadata.ts';
import {clusterConflict, qemuRunOptions} from '../../../providers/qemu/options.ts';
import {useColour} from '../../../src/cli/cluster-flags.ts';
import {createConsoleRenderer} from '../../../src/cli/console-render.ts';
import {ConfigError} from '../../../src/config/problems.ts';
import {junitErrorSuite, junitSuite, junitXml} from '../../../src/run/junit.ts';
import type {SessionResult} from '../../../src/run/session.ts';
import {loadTestManifest} from '../../../src/run/test-manifest.ts';
import {junitSchemaErrors, xpath} from '../../e2e/cluster-support.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-test-cluster-reports-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

const result = (over: Partial<SessionResult> = {}): SessionResult => ({
  runId: 'tskit-20261127-205319-abcdef',
  exitCode: 1,
  reason: '1 of 3 passed',
  count: 3,
  passed: 1,
  minPass: 3,
  startedAt: new Date('2026-11-27T20:53:19.250Z'),
  durationMs: 12_345,
  leaked: [],
  outcomes: [
    {index: 0, name: 'hello-0', verdict: 'matched', exitCode: 0, reason: '--wait-for /OK/ matched: OK', durationMs: 5000, consoleTail: 'boot\r\n\x1b[32mOK\x1b[0m\r\n', consoleAtVerdict: 'boot\r\nOK\r\n'},
    {index: 1, name: 'hello-1', verdict: 'failed-marker', exitCode: 1, reason: '--fail-on /FAIL/ matched: FAIL <disk> & "quotes" \x07bell', durationMs: 6000, consoleTail: 'a\x00b\x1bc ]]> </system-out>\r\nFAIL <disk> & "quotes" \x07bell\r\nafter\r\n', consoleAtVerdict: 'line one\r\nFAIL <disk> & "quotes" \x07bell\r\n'},
    {index: 2, name: 'hello-2', verdict: 'provider-error', exitCode: 125, reason: 'hello-2: qemu exited with status 1', durationMs: 10, consoleTail: '', consoleAtVerdict: ''},
  ],
  ...over,
});

describe('JUnit XML', () => {
  it('passes an XML Schema check and says what happened, console text cleaned', async () => {
    const file = join(dir, 'junit.xml');
    const suites = [
      junitSuite(result(), {name: 'tskit run qemu out/hello', classname: 'tskit.qemu.hello'}),
      junitErrorSuite({name: 'broken', classname: 'tskit.qemu.broken', caseName: 'broken', message: 'qemu: out/x: no such file', startedAt: new Date('2026-11-27T20:53:19Z')}),
    ];
    await writeFile(file, junitXml(suites, 'tskit test m.yml'));
    expect(await junitSchemaErrors(file, dir)).toBe('');
    expect(await xpath(file, 'string(/testsuites/@tests)')).toBe('4');
    expect(await xpath(file, 'string(/testsuites/@failures)')).toBe('1');
    expect(await xpath(file, 'string(/testsuites/@errors)')).toBe('2');
    expect(await xpath(file, 'string(//testsuite[1]/@timestamp)')).toBe('2026-11-27T20:53:19');
    expect(await xpath(file, 'string(//testsuite[1]/@time)')).toBe('12.345');
    expect(await xpath(file, 'string(//property[@name="tskit.run-id"]/@value)')).toBe('tskit-20261127-205319-abcdef');
    expect(await xpath(file, 'string(//testcase[@name="hello-1"]/failure/@message)')).toBe('--fail-on /FAIL/ matched: FAIL <disk> & "quotes" bell');
    expect(await xpath(file, 'string(//testcase[@name="hello-1"]/failure)')).toBe('--fail-on /FAIL/ matched: FAIL <disk> & "quotes" bell\n\nlast console lines before the verdict:\nline one\nFAIL <disk> & "quotes" bell');
    // escapes (ESC c is a terminal reset) and bytes XML cannot carry are gone; the markup is text
    expect(await xpath(file, 'string(//testcase[@name="hello-1"]/system-out)')).toBe('ab ]]> </system-out>\nFAIL <disk> & "quotes" bell\nafter\n');
    expect(await xpath(file, 'string(//testcase[@name="hello-0"]/system-out)')).toBe('boot\nOK\n');
    expect(await xpath(file, 'count(//testcase[@name="hello-0"]/failure)')).toBe('0');
    expect(await xpath(file, 'string(//testcase[@name="hello-2"]/error/@type)')).toBe('provider-error');
    expect(await xpath(file, 'string(//testsuite[@name="broken"]/testcase/error/@message)')).toBe('qemu: out/x: no such file');
  });

  it('the schema is strict enough to refuse what CI readers refuse', async () => {
    const bad = join(dir, 'bad.xml');
    await writeFile(bad, '<?xml version="1.0"?>\n<testsuites tests="1" failures="0" errors="0"><testsuite name="x" tests="1" failures="0" errors="0" time="1" hostname="h" timestamp="2026-11-27T20:53:19Z"><testcase name="a" classname="c"/></testsuite></testsuites>\n');
    const errors = await junitSchemaErrors(bad, dir);
    expect(errors).toMatch(/timestamp/);
    expect(errors).toMatch(/'time' is required/);
  });
});

describe('tskit test manifest', () => {
  it('expands images × providers × counts, with defaults under each test', async () => {
    const file = join(dir, 'm.yml');
    await writeFile(file, ['defaults:', '  timeout: 2m', '  fail-on: [FAIL, Kernel panic]', '  qemu: {mem: 512, accel: tcg}', 'tests:', '  - name: hello', '    image: [a, b]', '    count: [1, 3]', '    min-pass: 1', '    wait-for: OK', '    qemu: {mem: 1G}', '  - name: one', '    image: /abs/c', ''].join('\n'));
    const m = await loadTestManifest(file);
    expect(m.runs.map((r) => [r.name, r.instanceName, r.imageId, r.count])).toEqual([
      ['hello[image=a,count=1]', 'hello.1', join(dir, 'a'), 1],
      ['hello[image=a,count=3]', 'hello.2', join(dir, 'a'), 3],
      ['hello[image=b,count=1]', 'hello.3', join(dir, 'b'), 1],
      ['hello[image=b,count=3]', 'hello.4', join(dir, 'b'), 3],
      ['one', 'one', '/abs/c', 1],
    ]);
    expect(m.runs[0]).toMatchObject({timeoutMs: 120_000, minPass: 1, waitFor: [/OK/], failOn: [/FAIL/, /Kernel panic/], runOptions: {memMiB: 1024, accel: 'tcg'}});
    expect(m.runs[4]).toMatchObject({runOptions: {memMiB: 512, accel: 'tcg'}, waitFor: []});
  });

  it('reports every problem at its line and column before anything runs', async () => {
    const file = join(dir, 'bad.yml');
    await writeFile(file, ['tests:', '  - name: hello', '    image: out/hello', '    count: [0, 2]', '    wait-for: "HELLO-(OK"', '    qemu: {mem: 512, acel: tcg}', '    timeot: 5', '    provider: cloud9', '  - name: hello', '    min-pass: 3', '    timeout: soon', ''].join('\n'));
    const error = await loadTestManifest(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => `${p.line}:${p.col}: ${p.message}`)).toEqual([
      '4:13: tests[0].count[0]: 0 is out of range (1 to 10000)',
      '5:15: tests[0].wait-for: "HELLO-(OK" is not a regular expression: Invalid regular expression: /HELLO-(OK/: Unterminated group',
      '6:22: unknown field "acel" in qemu (did you mean "accel"?)',
      '7:5: tests[0].timeot: unknown field (expected name, image, provider, count, parallel, min-pass, wait-for, fail-on, timeout, user-data, aws, qemu)',
      '8:15: provider: unknown provider "cloud9" (known: aws, qemu)',
      '9:5: tests[1]: a test needs an image',
      '9:11: tests[1].name: "hello" is already the name of the test at line 2',
      '10:15: min-pass: 3 is more than the count (1)',
      '11:14: timeout: "soon" is not a duration (use e.g. 90s, 5m, 1h30m, 500ms or plain seconds)',
    ]);
    expect((error as Error).message).toContain(`${file}:4:13: tests[0].count[0]`);
    await writeFile(file, 'tests: []\n');
    await expect(loadTestManifest(file)).rejects.toThrow(/:1:8: tests: expected a non-empty list/);
  });
});

describe('guest metadata', () => {
  const meta: GuestMetadata = {runId: 'tskit-20261127-205319-abcdef', name: 'hello-1', index: 1, count: 3, network: {address: '10.77.0.11/24', mac: '52:54:00:77:00:01', peers: ['10.77.0.10', '10.77.0.11', '10.77.0.12']}, natMac: '52:54:00:12:34:56'};

  it('is a NoCloud seed (meta-data, network-config v2 matched by MAC) and LinuxKit metadata user-data', () => {
    const files = seedFiles(meta);
    expect(files['meta-data']).toBe('instance-id: tskit-20261127-205319-abcdef-1\nlocal-hostname: hello-1\n');
    expect(files['network-config']).toBe(
      'version: 2\nethernets:\n  nat:\n    match:\n      macaddress: "52:54:00:12:34:56"\n    dhcp4: true\n  cluster:\n    match:\n      macaddress: "52:54:00:77:00:01"\n    addresses: [10.77.0.11/24]\n',
    );
    const userData = JSON.parse(files['user-data']) as {tskit: {entries: Record<string, {content: string}>}};
    expect(userData.tskit.entries.index!.content).toBe('1\n');
    expect(userData.tskit.entries.peers!.content).toBe('10.77.0.10\n10.77.0.11\n10.77.0.12\n');
    expect(JSON.parse(files['tskit.json'])).toEqual({v: 1, runId: meta.runId, name: 'hello-1', index: 1, count: 3, network: meta.network});
    expect(seedFiles(meta, '#cloud-config\n')['user-data']).toBe('#cloud-config\n');
  });

  it('user data for a provider with no other channel (EC2): tskit\'s beside the user\'s metadata JSON, anything else as given', () => {
    const meta: GuestMetadata = {runId: 'tskit-r', name: 'hello-1', index: 1, count: 2, network: {address: '172.31.0.9/20', mac: '0a:00:00:00:00:01', peers: ['172.31.0.8', '172.31.0.9']}};
    const alone = JSON.parse(userDataWithMetadata(undefined, meta)) as {tskit: {entries: Record<string, {content: string}>}};
    expect(alone.tskit.entries.index!.content).toBe('1\n');
    const merged = JSON.parse(userDataWithMetadata('{"ssh": {"entries": {"authorized_keys": {"content": "k"}}}}', meta)) as Record<string, {entries: Record<string, {content: string}>}>;
    expect(merged.ssh!.entries.authorized_keys!.content).toBe('k');
    expect(merged.tskit!.entries.peers!.content).toBe('172.31.0.8\n172.31.0.9\n');
    for (const own of ['#cloud-config\nruncmd: [true]\n', '#!/bin/sh\necho hi\n', '[1, 2]', '{"tskit": {"mine": true}}']) expect(userDataWithMetadata(own, meta)).toBe(own);
  });

  it('refuses what several VMs cannot share: a published host port, a named disk file', () => {
    expect(clusterConflict(qemuRunOptions({publish: ['8080:80']}), 1)).toBeUndefined();
    expect(clusterConflict(qemuRunOptions({publish: ['8080:80']}), 2)).toMatch(/--publish forwards one host port, and 2 VMs cannot all have it/);
    expect(clusterConflict(qemuRunOptions({disk: ['file=data.qcow2']}), 3)).toMatch(/--disk file=data.qcow2 would be attached to all 3 VMs/);
    expect(clusterConflict(qemuRunOptions({disk: ['size=1G']}), 3)).toBeUndefined();
  });

  it('goes on the kernel command line, without the peers when they would not fit', () => {
    expect(cmdlineWords(meta).words.join(' ')).toBe('tskit.run=tskit-20261127-205319-abcdef tskit.name=hello-1 tskit.index=1 tskit.count=3 tskit.ip=10.77.0.11/24 tskit.mac=52:54:00:77:00:01 tskit.peers=10.77.0.10,10.77.0.11,10.77.0.12');
    const big = {...meta, count: 200, network: {...meta.network!, peers: Array.from({length: 200}, (_, i) => `10.77.0.${i}`)}};
    const words = cmdlineWords(big);
    expect(words.words.some((w) => w.startsWith('tskit.peers='))).toBe(false);
    expect(words.omitted).toMatch(/fw_cfg opt\/tskit\/metadata.json/);
  });
});

describe('ClusterSwitch', () => {
  const frame = (dst: string, src: string, payload: string): Buffer => {
    const body = Buffer.concat([Buffer.from(dst.replaceAll(':', ''), 'hex'), Buffer.from(src.replaceAll(':', ''), 'hex'), Buffer.from([0x08, 0x00]), Buffer.from(payload)]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    return Buffer.concat([length, body]);
  };
  const port = async (path: string): Promise<{socket: Socket; got: string[]}> => {
    const socket = connect(path);
    const got: string[] = [];
    let pending = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const n = pending.readUInt32BE(0);
        got.push(pending.subarray(18, 4 + n).toString());
        pending = pending.subarray(4 + n);
      }
    });
    await new Promise((r) => socket.once('connect', r));
    return {socket, got};
  };
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('floods broadcasts and unknown destinations, then sends unicast only where the MAC was seen', async () => {
    const sw = await ClusterSwitch.listen(join(dir, 'switch.sock'));
    const [a, b, c] = await Promise.all([port(sw.path), port(sw.path), port(sw.path)]);
    await settle();
    a!.socket.write(frame('ff:ff:ff:ff:ff:ff', '52:54:00:77:00:00', 'who-has'));
    await settle();
    expect([a!.got, b!.got, c!.got]).toEqual([[], ['who-has'], ['who-has']]);
    // b answers a: a's MAC is known, so only a gets it; split across writes, as a stream may be
    const reply = frame('52:54:00:77:00:00', '52:54:00:77:00:01', 'is-at');
    b!.socket.write(reply.subarray(0, 7));
    await settle();
    b!.socket.write(reply.subarray(7));
    await settle();
    expect([a!.got, b!.got, c!.got]).toEqual([['is-at'], ['who-has'], ['who-has']]);
    expect(sw.stats).toMatchObject({frames: 2, flooded: 1});
    // a frame longer than Ethernet allows ends that port, not the switch
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(1 << 20);
    c!.socket.write(huge);
    await settle();
    expect(c!.socket.destroyed || c!.socket.readableEnded).toBe(true);
    expect(sw.portCount).toBe(2);
    for (const p of [a, b, c]) p!.socket.destroy();
    await sw.close();
  });
});

describe('cluster consoles', () => {
  it('prefix every line from the first byte with padded names, a stable colour each, a file each, and NDJSON to a file', async () => {
    const out: string[] = [];
    const consoles = join(dir, 'consoles');
    await mkdir(consoles);
    const r = createConsoleRenderer({json: false, stdout: {write: (c) => out.push(String(c))}, stderr: {write: () => true}, names: ['web-0', 'web-1', 'web-10'], colour: true, consoleDir: consoles, jsonFile: join(dir, 'events.ndjson')});
    const vm = (name: string) => ({provider: 'qemu', id: name, name});
    // web-0's console starts before web-1 exists: prefixed all the same
    r.emit({type: 'instance.created', instance: 'web-0', provider: 'qemu', runId: 'r', index: 0});
    r.onConsole(vm('web-0'), Buffer.from('booting\nhalf'));
    r.emit({type: 'instance.created', instance: 'web-1', provider: 'qemu', runId: 'r', index: 1});
    r.onConsole(vm('web-1'), Buffer.from('up\n'));
    r.onConsole(vm('web-0'), Buffer.from(' line\n'));
    r.emit({type: 'cluster.verdict', runId: 'r', verdict: 'passed', passed: 2, count: 2, minPass: 2, exitCode: 0, reason: '2 of 2 passed'});
    r.close();
    expect(out.join('')).toBe('\x1b[36mweb-0 | \x1b[0mbooting\n\x1b[33mweb-1 | \x1b[0mup\n\x1b[36mweb-0 | \x1b[0mhalf line\n');
    expect(await readFile(join(consoles, 'web-0.log'), 'utf8')).toBe('booting\nhalf line\n');
    const events = (await readFile(join(dir, 'events.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as {type: string; v: number});
    expect(events.map((e) => [e.v, e.type])).toEqual([[1, 'instance.created'], [1, 'instance.created'], [1, 'cluster.verdict']]);
    expect(useColour({}, true)).toBe(true);
    expect(useColour({NO_COLOR: '1'}, true)).toBe(false);
    expect(useColour({}, false)).toBe(false);
    expect(useColour({FORCE_COLOR: '1'}, false)).toBe(true);
  });
});
