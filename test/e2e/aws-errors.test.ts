// Bad input to `tskit push aws` / `tskit run aws`: one line that says what to do, exit 1,
// nothing created in the account. And no secret in any output, log or state file.
import {execFileSync} from 'node:child_process';
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSnapshotsCommand} from '@aws-sdk/client-ec2';
import {CreateBucketCommand, ListMultipartUploadsCommand} from '@aws-sdk/client-s3';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {makeCounterDisk} from '../aws-peer/boot-disks.ts';
import {PEER_ACCESS_KEY, PEER_SECRET, startAwsPeer, type AwsPeer} from '../aws-peer/peer.ts';
import {makeMixedDisk} from '../aws-peer/verify.ts';
import {ensureBuilt, tskit, type Ran} from '../support/cli.ts';

let peer: AwsPeer;
/** EC2 actions the peer refuses, as an IAM policy without them would. */
const deny = new Set<string>();
let work: string;
let disk: string;
const outputs: Ran[] = [];

async function run(args: string[], env: Record<string, string | undefined>): Promise<Ran> {
  const ran = await tskit(args, {env});
  outputs.push(ran);
  return ran;
}

/** Nothing of ours in the account: no snapshots (beyond none), images, instances, uploads. */
async function accountIsEmpty(): Promise<void> {
  expect((await peer.ec2.send(new DescribeSnapshotsCommand({OwnerIds: ['self'], Filters: [{Name: 'tag-key', Values: ['tskit:digest']}]}))).Snapshots ?? []).toEqual([]);
  expect((await peer.ec2.send(new DescribeImagesCommand({Owners: ['self']}))).Images ?? []).toEqual([]);
  const instances = ((await peer.ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
  expect(instances).toEqual([]);
  expect((await peer.s3.send(new ListMultipartUploadsCommand({Bucket: 'tskit-errors'}))).Uploads ?? []).toEqual([]);
}

function oneLineError(ran: Ran, pattern: RegExp): void {
  expect(ran.code, ran.stderr).toBe(1);
  const lines = ran.stderr.trim().split('\n');
  expect(lines, ran.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tskit: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(ran.stdout).toBe('');
}

beforeAll(async () => {
  await ensureBuilt();
  peer = await startAwsPeer({boot: false, deny});
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-errors-'));
  disk = join(work, 'good.raw');
  await makeMixedDisk(disk, 2 * 1024 * 1024, [2]);
  await peer.s3.send(new CreateBucketCommand({Bucket: 'tskit-errors'}));
});
afterAll(async () => {
  await peer?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('bad input', () => {
  it('no credentials anywhere', async () => {
    const ran = await run(['push', 'aws', disk], peer.env({AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined}));
    oneLineError(ran, /no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, or sign in with `aws sso login`/);
    const running = await run(['run', 'aws', 'ami-0123456789abcdef0'], peer.env({AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined}));
    oneLineError(running, /no AWS credentials found/);
    await accountIsEmpty();
  });

  it('a profile that does not exist', async () => {
    const ran = await run(['push', 'aws', disk], peer.env({AWS_PROFILE: 'no-such-profile', AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined}));
    oneLineError(ran, /AWS profile no-such-profile was not found or has no credentials: check AWS_PROFILE/);
    await accountIsEmpty();
  });

  it('no region, and an unknown region', async () => {
    oneLineError(await run(['push', 'aws', disk], peer.env({AWS_REGION: undefined})), /no AWS region set: set AWS_REGION, or a region in your AWS profile/);
    oneLineError(await run(['push', 'aws', disk], peer.env({AWS_REGION: 'mars-north-9x'})), /unknown AWS region "mars-north-9x": set AWS_REGION/);
    oneLineError(await run(['push', 'aws', disk], peer.env({AWS_REGION: 'us-nowhere-7'})), /unknown AWS region us-nowhere-7: set AWS_REGION to one /);
    oneLineError(await run(['run', 'aws', 'ami-0123456789abcdef0'], peer.env({AWS_REGION: 'us-nowhere-7'})), /unknown AWS region us-nowhere-7/);
    await accountIsEmpty();
  });

  it('files that are not raw disks or VMDKs, and files that are not there', async () => {
    const qcow2 = join(work, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', disk, qcow2]);
    oneLineError(await run(['push', 'aws', qcow2], peer.env()), /disk\.qcow2 is a qcow2 disk; tskit push aws takes a raw disk \(tskit build -f aws, raw-bios or raw-efi\) or a VMDK/);
    const vhdx = join(work, 'disk.vhdx');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vhdx', disk, vhdx]);
    oneLineError(await run(['push', 'aws', vhdx], peer.env()), /is a VHDX disk; tskit push aws takes a raw disk/);
    const text = join(work, 'notes.txt');
    await writeFile(text, 'not a disk\n');
    oneLineError(await run(['push', 'aws', text], peer.env()), /notes\.txt is not a disk image: 11 bytes is not a whole number of 512-byte sectors/);
    const blank = join(work, 'blank.raw');
    await writeFile(blank, Buffer.alloc(1024 * 1024));
    oneLineError(await run(['push', 'aws', blank], peer.env()), /blank\.raw has no MBR boot code and no EFI system partition, so EC2 cannot boot it/);
    oneLineError(await run(['push', 'aws', join(work, 'missing.raw')], peer.env()), /cannot read .*missing\.raw: no such file/);
    await accountIsEmpty();
  });

  it('import without a bucket, or with one that does not exist', async () => {
    oneLineError(await run(['push', 'aws', '--method', 'import', disk], peer.env()), /--method import needs an S3 bucket to stage the disk in: pass --bucket B/);
    oneLineError(await run(['push', 'aws', '--method', 'import', '--bucket', 'no-such-bucket-here', disk], peer.env()), /S3 bucket no-such-bucket-here does not exist in us-east-1: create it \(aws s3 mb s3:\/\/no-such-bucket-here\) or name another with --bucket/);
    await accountIsEmpty();
  });

  it('IAM: a policy without DescribeRegions still pushes; one without RunInstances gets a one-line refusal', async () => {
    deny.add('DescribeRegions');
    try {
      const pushed = await run(['push', 'aws', '--json', disk], peer.env());
      expect(pushed.code, pushed.stderr).toBe(0);
      deny.add('RunInstances');
      const imageId = (JSON.parse(pushed.stdout.trim().split('\n').at(-1)!) as {imageId: string}).imageId;
      const ran = await run(['run', 'aws', imageId], peer.env());
      oneLineError(ran, /^tskit: error: AWS refused RunInstances \(UnauthorizedOperation\): You are not authorized to perform this operation\. .*: check your credentials and their IAM permissions$/);
      const instances = ((await peer.ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
      expect(instances).toEqual([]);
    } finally {
      deny.clear();
      // Leave the account as the other tests expect it: empty.
      const images = (await peer.ec2.send(new DescribeImagesCommand({Owners: ['self']}))).Images ?? [];
      for (const image of images) {
        await peer.ec2.send(new DeregisterImageCommand({ImageId: image.ImageId!}));
      }
      const snapshots = (await peer.ec2.send(new DescribeSnapshotsCommand({OwnerIds: ['self'], Filters: [{Name: 'tag-key', Values: ['tskit:digest']}]}))).Snapshots ?? [];
      for (const snapshot of snapshots) await peer.ec2.send(new DeleteSnapshotCommand({SnapshotId: snapshot.SnapshotId!}));
    }
  });

  it('bad flags', async () => {
    const tag = await run(['push', 'aws', '--tag', 'novalue', disk], peer.env());
    oneLineError(tag, /--tag novalue: expected KEY=VALUE/);
    const userData = await run(['run', 'aws', '--user-data', join(work, 'nope.txt'), 'ami-0123456789abcdef0'], peer.env());
    // A flag naming a file that is not there is a usage error, as for every run command.
    expect(userData.code, userData.stderr).toBe(2);
    expect(userData.stderr.trim()).toMatch(/^tskit: error: --user-data .*nope\.txt: ENOENT/);
    await accountIsEmpty();
  });
});

describe('secrets', () => {
  it('no credential appears in any output, event stream or state file, on success or failure', async () => {
    const counter = join(work, 'counter.raw');
    await makeCounterDisk(counter, {lines: 5, delay: 0x10000});
    const env = peer.env({TSKIT_DEBUG: '1'});
    const pushed = await run(['push', 'aws', '--json', counter], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    await run(['push', 'aws', counter], env);
    await run(['run', 'aws', '--json', '--verbose', '--timeout', '5s', 'no-such-ami-name'], env);
    // A failing upload whose errors carry request details.
    await run(['push', 'aws', '--method', 'import', '--bucket', 'tskit-errors', '--force', join(work, 'counter.raw')], peer.env({AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1'}));
    expect(outputs.length).toBeGreaterThan(10);
    for (const ran of outputs) {
      for (const text of [ran.stdout, ran.stderr]) {
        expect(text).not.toContain(PEER_SECRET);
        expect(text).not.toContain(PEER_ACCESS_KEY);
      }
    }
    // Journals and upload state under the state dir hold no credentials either.
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else files.push(path);
      }
    };
    await walk(join(peer.home, 'state'));
    for (const file of files) {
      if ((await stat(file)).size > 10 * 1024 * 1024) continue;
      const text = await readFile(file, 'utf8');
      expect(text).not.toContain(PEER_SECRET);
      expect(text).not.toContain(PEER_ACCESS_KEY);
    }
  });
});
