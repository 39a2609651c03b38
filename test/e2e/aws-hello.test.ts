// The AWS proof with the real image: templates/hello.yml built as an `aws` disk by `tskit
// build`, pushed with `tskit push aws`, booted by `tskit run aws` in the peer (moto + our EC2
// proxy booting the AMI's snapshot bytes in QEMU), which ends when the image's own
// container prints HELLO-OK; every console byte arrives once and in order, nothing is left.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {DescribeInstancesCommand, DescribeVolumesCommand} from '@aws-sdk/client-ec2';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {startAwsPeer, type AwsPeer} from '../aws-peer/peer.ts';
import {ensureBuilt, jsonLines, ROOT, tskit} from '../support/cli.ts';

let peer: AwsPeer;
let work: string;

beforeAll(async () => {
  await ensureBuilt();
  peer = await startAwsPeer();
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-hello-'));
});
afterAll(async () => {
  await peer?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('the hello image on AWS', () => {
  it('build -f aws, push aws, run aws --wait-for HELLO-OK: the marker the image printed, each byte once, nothing left', async () => {
    const built = await tskit(['build', '-f', 'aws', '--name', 'hello', '--dir', work, '--mirror', inject('tskitMirror'), join(ROOT, 'templates/hello.yml')], {env: {TSKIT_CACHE: join(work, 'cache')}});
    expect(built.code, built.stderr).toBe(0);

    const pushed = await tskit(['push', 'aws', '--json', join(work, 'hello.raw')], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const result = jsonLines(pushed.stdout).find((l) => l.type === 'result')!;
    // a hybrid disk: both boot modes, UEFI preferred
    expect(result).toMatchObject({bootMode: 'uefi-preferred', arch: 'x86_64', reused: false});

    const run = await tskit(['run', 'aws', '--json', '--wait-for', 'HELLO-OK', '--timeout', '180s', '--poll-interval', '500ms', result.imageId as string], {env: peer.env(), timeout: 240_000});
    expect(run.code, run.stderr).toBe(0);
    const events = jsonLines(run.stdout);
    expect(events.find((e) => e.type === 'verdict')).toMatchObject({verdict: 'matched', exitCode: 0});
    const instance = events.find((e) => e.type === 'instance.created')!.instance as string;
    const printed = events.filter((e) => e.type === 'console').map((e) => e.data).join('');
    // what the guest's serial port said, through GetConsoleOutput, exactly once
    expect(printed).toBe(peer.proxy.consoleOf(instance).toString('utf8').slice(0, printed.length));
    expect(printed).toMatch(/HELLO-OK greetings-from-a-files-entry/);
    expect(printed).toContain('tskit-init: phase onboot');

    const runId = (events.find((e) => e.type === 'instance.created')!.detail as {runId: string}).runId;
    const filter = [{Name: 'tag:tskit:run-id', Values: [runId]}];
    const instances = ((await peer.ec2.send(new DescribeInstancesCommand({Filters: filter}))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
    expect(instances.filter((i) => i.State?.Name !== 'terminated')).toEqual([]);
    expect((await peer.ec2.send(new DescribeVolumesCommand({Filters: filter}))).Volumes ?? []).toEqual([]);
  });
});
