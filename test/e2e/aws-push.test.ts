// `tskit push aws` against moto (through the EC2-completing proxy): both methods, raw and
// VMDK, idempotence, resumption. Every snapshot is read back block by block and compared with
// the image's non-zero blocks, because moto checks no checksums.
import {execFileSync, spawn} from 'node:child_process';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {DeleteSnapshotCommand, DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client} from '@aws-sdk/client-ec2';
import {CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command} from '@aws-sdk/client-s3';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startAwsPeer, PEER_REGION, type AwsPeer} from '../aws-peer/peer.ts';
import {startFaultProxy} from '../aws-peer/fault-proxy.ts';
import {compareBlocks, makeMixedDisk, nonZeroBlocks, snapshotBlocks} from '../aws-peer/verify.ts';
import {BIN, ensureBuilt, jsonLines, NODE, tskit} from '../support/cli.ts';

let peer: AwsPeer;
let work: string;
/** EC2 as tskit sees it: through the proxy, which restores what moto drops from RegisterImage. */
let ec2: EC2Client;

beforeAll(async () => {
  await ensureBuilt();
  peer = await startAwsPeer({boot: false, importStepMs: 700});
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-push-'));
  ec2 = new EC2Client({endpoint: peer.endpoint, region: PEER_REGION, credentials: {accessKeyId: 'check', secretAccessKey: 'check'}});
  await peer.s3.send(new CreateBucketCommand({Bucket: 'tskit-images'}));
});
afterAll(async () => {
  ec2?.destroy();
  await peer?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

function result(stdout: string): Record<string, unknown> {
  const line = jsonLines(stdout).find((l) => l.type === 'result');
  expect(line, stdout).toBeDefined();
  return line!;
}

async function image(imageId: string) {
  const answer = await ec2.send(new DescribeImagesCommand({ImageIds: [imageId]}));
  return answer.Images![0]!;
}

const tagsOf = (tags: {Key?: string; Value?: string}[] = []) => Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

describe('tskit push aws', () => {
  it('--method ebs: only non-zero blocks, read back equal; the AMI has the boot mode, architecture and tags', async () => {
    // 6 MiB and 3 sectors: the last block is partial; blocks 3, 4 and 11 hold data, the rest is zeros.
    const disk = join(work, 'mixed.raw');
    await makeMixedDisk(disk, 6 * 1024 * 1024 + 3 * 512, [3, 4, 11, 12]);
    const pushed = await tskit(['push', 'aws', '--json', '--tag', 'team=infra', '--tag', 'purpose=test', disk], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const r = result(pushed.stdout);
    expect(r).toMatchObject({region: PEER_REGION, method: 'ebs', arch: 'x86_64', bootMode: 'legacy-bios', reused: false});
    expect(r.imageId).toMatch(/^ami-/);
    expect(r.snapshotId).toMatch(/^snap-/);
    expect(typeof r.seconds).toBe('number');
    const expected = await nonZeroBlocks(disk);
    expect([...expected.keys()]).toEqual([0, 3, 4, 11, 12]);
    // Only the non-zero blocks travelled.
    expect(r.bytesSent).toBe(5 * 512 * 1024);
    expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), expected)).toBeUndefined();

    const ami = await image(r.imageId as string);
    expect(ami).toMatchObject({State: 'available', BootMode: 'legacy-bios', Architecture: 'x86_64', RootDeviceName: '/dev/xvda', EnaSupport: true});
    expect(ami.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId).toBe(r.snapshotId);
    const tags = tagsOf(ami.Tags);
    expect(tags).toMatchObject({team: 'infra', purpose: 'test', 'tskit:digest': `sha256:${r.sha256}`, 'tskit:source': 'mixed.raw'});
    const snapshot = (await peer.ec2.send(new DescribeSnapshotsCommand({SnapshotIds: [r.snapshotId as string]}))).Snapshots![0]!;
    expect(tagsOf(snapshot.Tags)).toMatchObject({team: 'infra', 'tskit:digest': `sha256:${r.sha256}`});
    const sha = execFileSync('sha256sum', [disk]).toString().split(' ')[0];
    expect(r.sha256).toBe(sha);

    // The same file again: the AMI is reused, nothing is sent.
    const again = await tskit(['push', 'aws', '--json', disk], {env: peer.env()});
    expect(again.code, again.stderr).toBe(0);
    expect(result(again.stdout)).toMatchObject({imageId: r.imageId, reused: true, bytesSent: 0});

    // --force: uploaded and registered again; the old AMI of the same name is replaced.
    const forced = await tskit(['push', 'aws', '--json', '--force', disk], {env: peer.env()});
    expect(forced.code, forced.stderr).toBe(0);
    const f = result(forced.stdout);
    expect(f.reused).toBe(false);
    expect(f.imageId).not.toBe(r.imageId);
    expect((await ec2.send(new DescribeImagesCommand({ImageIds: [r.imageId as string]}))).Images ?? []).toEqual([]);
    expect(compareBlocks(await snapshotBlocks(peer.ebs, f.snapshotId as string), expected)).toBeUndefined();

    // The state dir keeps no upload state and no open journal entries after success.
    const state = join(peer.home, 'state');
    expect(await readdir(join(state, 'aws-uploads')).catch(() => [])).toEqual([]);
    expect(await readdir(join(state, 'runs')).catch(() => [])).toEqual([]);
  });

  it('--method import of a raw disk: multipart upload to S3, ImportSnapshot, the object removed afterwards', async () => {
    const disk = join(work, 'import.raw');
    await makeMixedDisk(disk, 20 * 1024 * 1024, [1, 17, 30, 39], 'TSKIT-AWS-IMPORT');
    const pushed = await tskit(['push', 'aws', '--json', '--method', 'import', '--bucket', 'tskit-images', '--name', 'import-raw-test', disk], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const events = jsonLines(pushed.stdout);
    const statuses = events.filter((e) => e.type === 'log' && String(e.message).startsWith('import ')).map((e) => String(e.message).replace(/^import \S+: /, ''));
    expect(statuses.at(-1)).toBe('completed');
    expect(new Set(statuses).size, statuses.join(' | ')).toBeGreaterThan(1);
    const r = result(pushed.stdout);
    expect(r).toMatchObject({method: 'import', name: 'import-raw-test', bootMode: 'legacy-bios', bytesSent: 20 * 1024 * 1024});
    expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), await nonZeroBlocks(disk))).toBeUndefined();
    expect(tagsOf((await image(r.imageId as string)).Tags)['tskit:digest']).toBe(`sha256:${r.sha256}`);
    const objects = await peer.s3.send(new ListObjectsV2Command({Bucket: 'tskit-images'}));
    expect(objects.KeyCount ?? 0).toBe(0);
    const uploads = await peer.s3.send(new ListMultipartUploadsCommand({Bucket: 'tskit-images'}));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('a VMDK (monolithic sparse and stream-optimized), by either method, lands byte-exact with its boot mode read from it', async () => {
    const raw = join(work, 'for-vmdk.raw');
    await makeMixedDisk(raw, 8 * 1024 * 1024, [2, 7, 9], 'TSKIT-AWS-VMDK');
    const expected = await nonZeroBlocks(raw);
    for (const subformat of ['monolithicSparse', 'streamOptimized']) {
      const vmdk = join(work, `disk-${subformat}.vmdk`);
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, raw, vmdk]);
      for (const method of ['ebs', 'import']) {
        const pushed = await tskit(['push', 'aws', '--json', '--force', '--method', method, '--bucket', 'tskit-images', vmdk], {env: peer.env()});
        expect(pushed.code, pushed.stderr).toBe(0);
        const r = result(pushed.stdout);
        expect(r).toMatchObject({method, arch: 'x86_64', bootMode: 'legacy-bios'});
        // The EBS method reads the VMDK's grains: only the 4 non-zero blocks travel.
        if (method === 'ebs') expect(r.bytesSent).toBe(4 * 512 * 1024);
        expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), expected), `${subformat} ${method}`).toBeUndefined();
      }
    }
  });

  it('an import that VM Import rejects fails with its status message', async () => {
    const bogus = join(work, 'bogus.vmdk');
    // A VMDK descriptor naming an extent that is not there: qemu-img (the peer's converter) rejects it.
    await (await import('node:fs/promises')).writeFile(bogus, '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "missing-flat.vmdk" 0\n');
    // tskit's own reader refuses a descriptor with separate extents; VM Import is asked and says no.
    const refused = await tskit(['push', 'aws', bogus], {env: peer.env()});
    expect(refused.stderr).toMatch(/^tskit: error: .*bogus\.vmdk is a VMDK descriptor whose data lives in separate extent files/);
    const pushed = await tskit(['push', 'aws', '--method', 'import', '--bucket', 'tskit-images', '--arch', 'x86_64', bogus], {env: peer.env()});
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toMatch(/^tskit: error: import of s3:\/\/tskit-images\/tskit\/\w+\.vmdk failed: ClientError: Disk validation failed/m);
    // Status lines come before it; the error itself is one line, the last.
    expect(pushed.stderr.trim().split('\n').at(-1)).toMatch(/^tskit: error: import of .* failed: ClientError: Disk validation failed \[Unsupported specified file format\]$/);
  });

  it('an interrupted push continues where it stopped', async () => {
    // Slow the peer down so the interruption lands mid-upload.
    const slow = await startFaultProxy({target: peer.endpoint, rate: 0, delayMs: 40});
    try {
      const disk = join(work, 'resume.raw');
      await makeMixedDisk(disk, 24 * 1024 * 1024, Array.from({length: 47}, (_, i) => i + 1), 'TSKIT-AWS-RESUME');
      const env = peer.env({AWS_ENDPOINT_URL: slow.url});
      const child = spawn(NODE, [BIN, 'push', 'aws', '--json', '--concurrency', '1', disk], {env: {...process.env, ...env} as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']});
      let out = '';
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const interrupted = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const progress = jsonLines(out).filter((e) => e.type === 'progress' && String(e.task).startsWith('upload '));
        if (progress.some((e) => Number(e.done) >= 10 * 512 * 1024) && !child.killed) child.kill('SIGINT');
      });
      expect(await interrupted, stderr).toBe(130);
      expect(stderr).toMatch(/interrupted by SIGINT; run the same command again to continue/);
      const uploads = join(peer.home, 'state', 'aws-uploads');
      const [stateFile] = await readdir(uploads);
      const state = JSON.parse(await readFile(join(uploads, stateFile!), 'utf8')) as {snapshotId: string; done: number[]};
      expect(state.done.length).toBeGreaterThanOrEqual(10);
      expect(state.done.length).toBeLessThan(48);

      const resumed = await tskit(['push', 'aws', '--json', disk], {env});
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(jsonLines(resumed.stdout).some((e) => e.type === 'log' && String(e.message).startsWith(`continuing the upload into ${state.snapshotId}`))).toBe(true);
      const r = result(resumed.stdout);
      expect(r.snapshotId).toBe(state.snapshotId);
      expect(Number(r.bytesSent)).toBeLessThanOrEqual((48 - state.done.length) * 512 * 1024);
      expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), await nonZeroBlocks(disk))).toBeUndefined();
      expect(await readdir(uploads)).toEqual([]);
    } finally {
      await slow.stop();
    }
  });

  it('an interrupted push whose snapshot is gone starts over cleanly', async () => {
    const slow = await startFaultProxy({target: peer.endpoint, rate: 0, delayMs: 40});
    try {
      const disk = join(work, 'restart.raw');
      await makeMixedDisk(disk, 16 * 1024 * 1024, Array.from({length: 31}, (_, i) => i + 1), 'TSKIT-AWS-RESTART');
      const env = peer.env({AWS_ENDPOINT_URL: slow.url});
      const child = spawn(NODE, [BIN, 'push', 'aws', '--json', '--concurrency', '1', disk], {env: {...process.env, ...env} as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']});
      let out = '';
      const interrupted = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (jsonLines(out).some((e) => e.type === 'progress' && String(e.task).startsWith('upload ') && Number(e.done) >= 6 * 512 * 1024) && !child.killed) child.kill('SIGTERM');
      });
      expect(await interrupted).toBe(143);
      const uploads = join(peer.home, 'state', 'aws-uploads');
      const [stateFile] = await readdir(uploads);
      const state = JSON.parse(await readFile(join(uploads, stateFile!), 'utf8')) as {snapshotId: string};
      // Someone (or AWS's timeout) removed the half-written snapshot.
      await ec2.send(new DeleteSnapshotCommand({SnapshotId: state.snapshotId}));
      const again = await tskit(['push', 'aws', '--json', disk], {env: peer.env()});
      expect(again.code, again.stderr).toBe(0);
      const logs = jsonLines(again.stdout).filter((e) => e.type === 'log').map((e) => String(e.message));
      expect(logs.some((m) => m.startsWith(`${state.snapshotId} is no longer writable`) && m.endsWith('starting over'))).toBe(true);
      const r = result(again.stdout);
      expect(r.snapshotId).not.toBe(state.snapshotId);
      expect(r.bytesSent).toBe(32 * 512 * 1024);
      expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), await nonZeroBlocks(disk))).toBeUndefined();
    } finally {
      await slow.stop();
    }
  });

  it('a UEFI disk (GPT, an EFI system partition with BOOTX64.EFI) registers as uefi x86_64', async () => {
    const {makeEfiDisk} = await import('../aws-peer/efi-disk.ts');
    const disk = join(work, 'efi.raw');
    makeEfiDisk(disk, 'x86_64', work);
    const pushed = await tskit(['push', 'aws', '--json', disk], {env: peer.env()});
    expect(pushed.code, pushed.stderr).toBe(0);
    const r = result(pushed.stdout);
    expect(r).toMatchObject({bootMode: 'uefi', arch: 'x86_64'});
    expect(await image(r.imageId as string)).toMatchObject({BootMode: 'uefi', Architecture: 'x86_64'});
  });
});
