// A flaky network between tskit and AWS: connections dropped (before and after the request
// reached the peer), 500s, 503s, S3 SlowDown, EBS throttling, on a share of requests. Pushes
// still produce byte-exact snapshots; a peer that goes away makes tskit give up after its
// retry budget with a clear one-line error.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {CreateBucketCommand} from '@aws-sdk/client-s3';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startFaultProxy} from '../aws-peer/fault-proxy.ts';
import {startAwsPeer, type AwsPeer} from '../aws-peer/peer.ts';
import {compareBlocks, makeMixedDisk, nonZeroBlocks, snapshotBlocks} from '../aws-peer/verify.ts';
import {ensureBuilt, jsonLines, tskit} from '../support/cli.ts';

let peer: AwsPeer;
let work: string;

beforeAll(async () => {
  await ensureBuilt();
  peer = await startAwsPeer({boot: false, importStepMs: 200});
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-faults-'));
  await peer.s3.send(new CreateBucketCommand({Bucket: 'tskit-flaky'}));
});
afterAll(async () => {
  await peer?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

const result = (stdout: string) => jsonLines(stdout).find((l) => l.type === 'result')!;

describe('push through a flaky network', () => {
  it('--method ebs: 30% of requests fail in every way, the snapshot is still byte-exact', async () => {
    const flaky = await startFaultProxy({target: peer.endpoint, rate: 0.3, seed: 7});
    try {
      const disk = join(work, 'flaky-ebs.raw');
      await makeMixedDisk(disk, 32 * 1024 * 1024, Array.from({length: 40}, (_, i) => i * 1.5 + 2).map(Math.floor));
      const pushed = await tskit(['push', 'aws', '--json', disk], {env: peer.env({AWS_ENDPOINT_URL: flaky.url, AWS_MAX_ATTEMPTS: '12'}), timeout: 300_000});
      expect(pushed.code, pushed.stderr + pushed.stdout.slice(-2000)).toBe(0);
      const r = result(pushed.stdout);
      expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), await nonZeroBlocks(disk))).toBeUndefined();
      // Every kind of fault happened.
      expect(flaky.stats.dropped).toBeGreaterThan(0);
      expect(flaky.stats.droppedAfter).toBeGreaterThan(0);
      expect(flaky.stats.status500).toBeGreaterThan(0);
      expect(flaky.stats.status503).toBeGreaterThan(0);
      expect(flaky.stats.throttled).toBeGreaterThan(0);
    } finally {
      await flaky.stop();
    }
  });

  it('--method import: multipart parts and polls retried, the snapshot is byte-exact', async () => {
    const flaky = await startFaultProxy({target: peer.endpoint, rate: 0.3, seed: 11});
    try {
      const disk = join(work, 'flaky-import.raw');
      await makeMixedDisk(disk, 40 * 1024 * 1024, [1, 20, 41, 60, 79]);
      const pushed = await tskit(['push', 'aws', '--json', '--method', 'import', '--bucket', 'tskit-flaky', disk], {env: peer.env({AWS_ENDPOINT_URL: flaky.url, AWS_MAX_ATTEMPTS: '12'}), timeout: 300_000});
      expect(pushed.code, pushed.stderr).toBe(0);
      const r = result(pushed.stdout);
      expect(compareBlocks(await snapshotBlocks(peer.ebs, r.snapshotId as string), await nonZeroBlocks(disk))).toBeUndefined();
      expect(flaky.stats.status503 + flaky.stats.throttled + flaky.stats.dropped).toBeGreaterThan(0);
    } finally {
      await flaky.stop();
    }
  });

  it('the peer going down mid-upload: a clear error after the retry budget, exit 1', async () => {
    const link = await startFaultProxy({target: peer.endpoint, rate: 0, delayMs: 30});
    try {
      const disk = join(work, 'down.raw');
      await makeMixedDisk(disk, 16 * 1024 * 1024, Array.from({length: 31}, (_, i) => i + 1));
      const env = peer.env({AWS_ENDPOINT_URL: link.url, AWS_MAX_ATTEMPTS: '3'});
      const pushing = tskit(['push', 'aws', '--concurrency', '2', disk], {env, timeout: 120_000});
      // Let the upload start, then pull the plug.
      while (link.stats.requests < 12) await new Promise((r) => setTimeout(r, 20));
      link.down();
      const started = Date.now();
      const pushed = await pushing;
      expect(pushed.code).toBe(1);
      const lines = pushed.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tskit: error: AWS PutSnapshotBlock \(block \d+\) failed after 3 attempts: .*the endpoint is unreachable or not answering; check the network and AWS_ENDPOINT_URL, then run the command again$/);
      // Three attempts with backoff, not minutes of hanging.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await link.stop();
    }
  });

  it('an endpoint that is not there at all: the same kind of error before anything is created', async () => {
    const link = await startFaultProxy({target: peer.endpoint, rate: 0});
    link.down();
    const disk = join(work, 'nowhere.raw');
    await makeMixedDisk(disk, 1024 * 1024, []);
    const pushed = await tskit(['push', 'aws', disk], {env: peer.env({AWS_ENDPOINT_URL: link.url, AWS_MAX_ATTEMPTS: '2'})});
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toMatch(/^tskit: error: AWS DescribeRegions failed after 2 attempts: .*unreachable/);
    await link.stop();
  });
});
