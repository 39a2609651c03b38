// `tskit run aws` against moto, with the peer proxy booting each instance in QEMU from its
// AMI's snapshot bytes: the console is the guest's own serial output, each byte once and in
// order; instances and their volumes and interfaces are gone however the run ends.
import {spawn} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {DescribeInstanceAttributeCommand, DescribeInstancesCommand, DescribeNetworkInterfacesCommand, DescribeVolumesCommand, TerminateInstancesCommand} from '@aws-sdk/client-ec2';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {AwsProvider} from '../../providers/aws/index.ts';
import {readJournals} from '../../src/run/run-journal.ts';
import {counterLine, makeCounterDisk} from '../aws-peer/boot-disks.ts';
import {EFI_MARKER, makeEfiDisk} from '../aws-peer/efi-disk.ts';
import {startAwsPeer, type AwsPeer} from '../aws-peer/peer.ts';
import {BIN, ensureBuilt, jsonLines, NODE, tskit} from '../support/cli.ts';
import {makeBootDisk} from '../support/initrd-bootdisk.ts';

let peer: AwsPeer;
let work: string;
let markerAmi: string;

/**
 * A one-sector BIOS disk that prints a marker: boots in a second, so the teardown cases here
 * stay quick (test/e2e/aws-hello.test.ts runs the real hello image end to end).
 */
async function markerImage(): Promise<{path: string; marker: string}> {
  const path = join(work, 'marker.raw');
  await makeBootDisk(path, 'TSKIT-AWS-RUN-MARKER from the guest');
  return {path, marker: 'TSKIT-AWS-RUN-MARKER'};
}

beforeAll(async () => {
  await ensureBuilt();
  // A small console window, so the polled console slides over the counter disk's output.
  peer = await startAwsPeer({consoleWindow: 1024});
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-run-'));
  const image = await markerImage();
  const pushed = await tskit(['push', 'aws', '--json', image.path], {env: peer.env()});
  expect(pushed.code, pushed.stderr).toBe(0);
  markerAmi = jsonLines(pushed.stdout).find((l) => l.type === 'result')!.imageId as string;
});
afterAll(async () => {
  await peer?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

const runIdOf = (stdout: string): string => {
  const created = jsonLines(stdout).find((e) => e.type === 'instance.created');
  return (created?.detail as {runId: string}).runId;
};

/** What is left of a run in moto: instances not terminated, its volumes and network interfaces. */
async function leftovers(runId: string): Promise<{instances: string[]; volumes: string[]; interfaces: string[]}> {
  const filter = [{Name: 'tag:tskit:run-id', Values: [runId]}];
  const reservations = (await peer.ec2.send(new DescribeInstancesCommand({Filters: filter}))).Reservations ?? [];
  const instances = reservations.flatMap((r) => r.Instances ?? []).filter((i) => i.State?.Name !== 'terminated').map((i) => i.InstanceId!);
  const volumes = ((await peer.ec2.send(new DescribeVolumesCommand({Filters: filter}))).Volumes ?? []).map((v) => v.VolumeId!);
  const interfaces = ((await peer.ec2.send(new DescribeNetworkInterfacesCommand({Filters: filter}))).NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId!);
  return {instances, volumes, interfaces};
}

/** Runs `fn` with an AwsProvider in this process, configured (through the environment, as a user's) for the peer. */
async function withPeerEnv(fn: (provider: AwsProvider) => Promise<void>): Promise<void> {
  const saved = {...process.env};
  for (const [key, value] of Object.entries(peer.env())) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const provider = new AwsProvider();
  try {
    await fn(provider);
  } finally {
    await provider.close();
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

const nothingLeft = {instances: [], volumes: [], interfaces: []};

/** Starts `tskit run aws ... --json` and resolves once the instances exist. */
function startRun(args: string[]) {
  const child = spawn(NODE, [BIN, 'run', 'aws', '--json', ...args], {env: {...process.env, ...peer.env()} as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']});
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})));
  const started = new Promise<void>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (stdout.includes('"instance.created"')) resolve();
    });
    void closed.then(() => resolve());
  });
  return {child, started, closed, output: () => ({stdout, stderr})};
}

describe('tskit run aws', () => {
  it('--wait-for sees the marker the image itself printed, and the instance is gone afterwards', async () => {
    const {marker} = await markerImage();
    const run = await tskit(['run', 'aws', '--json', '--wait-for', marker, '--timeout', '90s', '--poll-interval', '300ms', markerAmi], {env: peer.env()});
    expect(run.code, run.stderr).toBe(0);
    const events = jsonLines(run.stdout);
    const verdict = events.find((e) => e.type === 'verdict')!;
    expect(verdict).toMatchObject({verdict: 'matched', exitCode: 0});
    const instance = events.find((e) => e.type === 'instance.created')!.instance as string;
    const printed = events.filter((e) => e.type === 'console').map((e) => e.data).join('');
    // Exactly what the VM wrote on its serial port, once.
    expect(printed).toBe(peer.proxy.consoleOf(instance).toString('utf8'));
    expect(printed).toBe('TSKIT-AWS-RUN-MARKER from the guest\r\n');
    expect(events.at(-1)).toMatchObject({type: 'instance.destroyed', instance});
    expect(await leftovers(runIdOf(run.stdout))).toEqual(nothingLeft);
  });

  it('a console longer than EC2\'s window arrives whole, each byte once and in order; a guest poweroff ends the run with 0', async () => {
    const disk = join(work, 'counter.raw');
    await makeCounterDisk(disk, {lines: 150, delay: 0x200000});
    const pushed = await tskit(['push', 'aws', '--json', disk], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const ami = jsonLines(pushed.stdout).find((l) => l.type === 'result')!.imageId as string;
    const run = await tskit(['run', 'aws', '--timeout', '120s', '--poll-interval', '100ms', '--verbose', ami], {env: peer.env()});
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/the guest shut down/);
    const expected = Array.from({length: 150}, (_, i) => counterLine(i)).join('');
    expect(expected.length).toBeGreaterThan(4 * 1024);
    expect(run.stdout).toBe(expected);
    expect(run.stderr).not.toMatch(/lost/);
  });

  it('a UEFI AMI boots under UEFI firmware: the EFI application on its ESP prints the marker', async () => {
    const disk = join(work, 'uefi.raw');
    makeEfiDisk(disk, 'x86_64', work, {loader: 'marker'});
    const pushed = await tskit(['push', 'aws', '--json', disk], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const r = jsonLines(pushed.stdout).find((l) => l.type === 'result')!;
    expect(r).toMatchObject({bootMode: 'uefi', arch: 'x86_64'});
    const run = await tskit(['run', 'aws', '--wait-for', 'TSKIT-UEFI-MARK', '--timeout', '120s', '--poll-interval', '500ms', r.imageId as string], {env: peer.env()});
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`${EFI_MARKER}\r\n`);
    // Firmware output comes first: the marker is the end of what was printed.
    expect(run.stdout.endsWith(`${EFI_MARKER}\r\n`)).toBe(true);
  });

  it('--count 3 starts three instances, each sees the marker, all are torn down', async () => {
    const {marker} = await markerImage();
    const run = await tskit(['run', 'aws', '--json', '--count', '3', '--wait-for', marker, '--timeout', '120s', '--poll-interval', '300ms', markerAmi], {env: peer.env()});
    expect(run.code, run.stderr).toBe(0);
    const events = jsonLines(run.stdout);
    const created = events.filter((e) => e.type === 'instance.created').map((e) => e.instance);
    expect(new Set(created).size).toBe(3);
    expect(events.filter((e) => e.type === 'verdict' && e.verdict === 'matched')).toHaveLength(3);
    expect(new Set(events.filter((e) => e.type === 'instance.destroyed').map((e) => e.instance))).toEqual(new Set(created));
    const runId = runIdOf(run.stdout);
    const all = (await peer.ec2.send(new DescribeInstancesCommand({Filters: [{Name: 'tag:tskit:run-id', Values: [runId]}]}))).Reservations!.flatMap((r) => r.Instances ?? []);
    expect(all.map((i) => i.State?.Name)).toEqual(['terminated', 'terminated', 'terminated']);
    // one RunInstances per instance: each is named and tagged with its place in the cluster
    const tag = (i: (typeof all)[number], key: string) => i.Tags?.find((t) => t.Key === key)?.Value;
    expect(all.map((i) => tag(i, 'tskit:index')).sort()).toEqual(['0', '1', '2']);
    expect(all.map((i) => tag(i, 'Name')).sort()).toEqual(all.map((i) => tag(i, 'tskit:index')).sort().map((n) => expect.stringMatching(new RegExp(`-${n}$`))));
    // one subnet, an interface per member made first: each member's user data lists every address
    const told = await Promise.all(all.map(async (i) => {
      const attribute = await peer.ec2.send(new DescribeInstanceAttributeCommand({InstanceId: i.InstanceId!, Attribute: 'userData'}));
      const entries = (JSON.parse(Buffer.from(attribute.UserData!.Value!, 'base64').toString()) as {tskit: {entries: Record<string, {content: string}>}}).tskit.entries;
      return {index: Number(tag(i, 'tskit:index')), said: Number(entries.index!.content), address: entries.address!.content.trim(), peers: entries.peers!.content.trim().split('\n'), count: entries.count!.content.trim()};
    }));
    const peers = told[0]!.peers;
    expect(new Set(peers).size).toBe(3);
    for (const member of told) {
      expect(member).toMatchObject({said: member.index, count: '3', peers});
      expect(member.address.split('/')[0]).toBe(peers[member.index]);
    }
    expect(new Set(all.map((i) => i.SubnetId)).size).toBe(1);
    const interfaces = await peer.ec2.send(new DescribeNetworkInterfacesCommand({Filters: [{Name: 'tag:tskit:network', Values: [`${runId}-net`]}]}));
    expect(interfaces.NetworkInterfaces ?? []).toEqual([]);
    expect(await leftovers(runId)).toEqual(nothingLeft);
  });

  it('Ctrl-C mid-run: exit 130, instance, volume and interface gone', async () => {
    const run = startRun(['--wait-for', 'NEVER-PRINTED', '--timeout', '120s', '--poll-interval', '300ms', markerAmi]);
    await run.started;
    const runId = runIdOf(run.output().stdout);
    expect((await leftovers(runId)).instances).toHaveLength(1);
    run.child.kill('SIGINT');
    const {code} = await run.closed;
    expect(code, run.output().stderr).toBe(130);
    expect(jsonLines(run.output().stdout).find((e) => e.type === 'verdict')).toMatchObject({verdict: 'interrupted', exitCode: 130});
    expect(await leftovers(runId)).toEqual(nothingLeft);
  });

  it('killed with SIGKILL: what it left is found (journal and tags) and removed by list/destroy', async () => {
    const run = startRun(['--wait-for', 'NEVER-PRINTED', '--timeout', '120s', markerAmi]);
    await run.started;
    const runId = runIdOf(run.output().stdout);
    run.child.kill('SIGKILL');
    await run.closed;
    const left = await leftovers(runId);
    expect(left.instances).toHaveLength(1);
    expect(left.volumes).toHaveLength(1);

    // The killed run's journal (shared with every provider) still holds the instance it recorded.
    const state = join(peer.home, 'state');
    const journal = (await readJournals(state)).find((j) => j.runId === runId);
    expect(journal?.ownerAlive).toBe(false);
    expect(journal?.live).toContainEqual(expect.objectContaining({kind: 'instance', id: left.instances[0]}));

    // The provider's list finds it by its tags too, but only when older than --older-than.
    await withPeerEnv(async (provider) => {
      const strays = [];
      for await (const resource of provider.list({})) strays.push(resource);
      expect(strays).toContainEqual(expect.objectContaining({kind: 'instance', id: left.instances[0], runId}));
      const young = [];
      for await (const resource of provider.list({olderThan: new Date(Date.now() - 3600_000)})) young.push(resource);
      expect(young.filter((r) => r.runId === runId)).toEqual([]);
    });

    // `tskit gc aws` removes it through the journal, and the journal with it.
    const gc = await tskit(['gc', 'aws', '--json'], {env: peer.env()});
    expect(gc.code, gc.stderr).toBe(0);
    expect(jsonLines(gc.stdout).filter((e) => e.type === 'resource.destroyed')).toContainEqual(expect.objectContaining({provider: 'aws', kind: 'instance', id: left.instances[0]}));
    expect((await readJournals(state)).find((j) => j.runId === runId)).toBeUndefined();
    expect(await leftovers(runId)).toEqual(nothingLeft);
  });

  it('a cluster killed with SIGKILL: tskit gc aws removes its instances and its network\'s interfaces', async () => {
    const run = startRun(['--count', '2', '--wait-for', 'NEVER-PRINTED', '--timeout', '120s', markerAmi]);
    await run.started;
    for (let i = 0; i < 200 && run.output().stdout.split('"instance.created"').length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const runId = runIdOf(run.output().stdout);
    run.child.kill('SIGKILL');
    await run.closed;
    const left = await leftovers(runId);
    expect(left.instances).toHaveLength(2);
    expect(left.interfaces).toHaveLength(2); // the network's, made before the instances
    const gc = await tskit(['gc', 'aws', '--json'], {env: peer.env()});
    expect(gc.code, gc.stderr).toBe(0);
    expect(jsonLines(gc.stdout).filter((e) => e.type === 'resource.destroyed')).toContainEqual(expect.objectContaining({provider: 'aws', kind: 'network', id: `${runId}-net`}));
    expect(await leftovers(runId)).toEqual(nothingLeft);
  });

  it('--timeout: exit 124 and torn down', async () => {
    const run = await tskit(['run', 'aws', '--json', '--wait-for', 'NEVER-PRINTED', '--timeout', '4s', '--poll-interval', '300ms', markerAmi], {env: peer.env()});
    expect(run.code, run.stderr).toBe(124);
    expect(jsonLines(run.stdout).find((e) => e.type === 'verdict')).toMatchObject({verdict: 'timeout'});
    expect(await leftovers(runIdOf(run.stdout))).toEqual(nothingLeft);
  });

  it('--keep leaves the instance running, tagged so gc leaves it too', async () => {
    const {marker} = await markerImage();
    const run = await tskit(['run', 'aws', '--json', '--keep', '--wait-for', marker, '--timeout', '90s', '--poll-interval', '300ms', markerAmi], {env: peer.env()});
    expect(run.code, run.stderr).toBe(0);
    const runId = runIdOf(run.stdout);
    const left = await leftovers(runId);
    expect(left.instances).toHaveLength(1);
    await withPeerEnv(async (provider) => {
      const strays = [];
      for await (const resource of provider.list({runId})) strays.push(resource);
      expect(strays).toEqual([]);
    });
    await peer.ec2.send(new TerminateInstancesCommand({InstanceIds: left.instances}));
  });

  it('an unknown AMI: exit 1, one line, nothing started', async () => {
    const run = await tskit(['run', 'aws', 'no-such-image-name'], {env: peer.env()});
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tskit: error: no AMI no-such-image-name in us-east-1: push one with `tskit push aws IMAGE_FILE`/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});
