// A disk that fills up during `tskit cache pull`: the test mounts a small tmpfs of its own
// (root is needed, as CI has) and points the cache at it. The pull must fail naming the file
// and the space it needs, publish nothing under a digest it does not hash to, and leave no
// temp file or lease behind; with room again, the same cache pulls the image whole.
import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runBounded} from '../support/bounded-run.ts';
import {ensureBuilt} from '../support/cli.ts';
import {serveLayout, sha256, startHostileRegistry, type HostileRegistry} from '../support/hostile-registry.ts';
import {leftovers} from '../support/oci-cache-helpers.ts';
import {writeOciLayout} from '../support/oci-images.ts';

let work: string;
let mountPoint: string;
let registry: HostileRegistry;
let layerDigest: string;
const MiB = 1024 * 1024;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-disk-full-'));
  mountPoint = join(work, 'small');
  await mkdir(mountPoint);
  // A 1.5 MiB layer (random bytes: nothing compresses) into about 1.4 MiB of room: its
  // first 1 MiB write fits and its last is cut short, which is how a truncated blob once
  // came to be stored under its real digest.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tskit-test-tmpfs', mountPoint]);
  execFileSync('sh', ['-c', `head -c 600k /dev/zero > ${join(mountPoint, 'filler')}`]);
  registry = await startHostileRegistry();
  const layout = await writeOciLayout(join(work, 'layout'), 'v1', {architecture: 'amd64', layers: [{'big.bin': randomBytes(1.5 * MiB)}]});
  layerDigest = layout.images[0]!.layers[0]!.digest;
  await serveLayout(registry, layout.dir, 'big/app', 'v1');
  const small = await writeOciLayout(join(work, 'small-layout'), 'v1', {architecture: 'amd64', layers: [{'small.bin': randomBytes(40_000)}]});
  await serveLayout(registry, small.dir, 'small/app', 'v1');
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (mountPoint) execFileSync('umount', [mountPoint]);
  if (work) await rm(work, {recursive: true, force: true});
});

describe('a disk that fills up during cache pull', () => {
  it('fails naming the path and the space needed, and publishes nothing it did not verify', async () => {
    const cache = join(mountPoint, 'cache');
    const ran = await runBounded(['cache', 'pull', `${registry.host}/big/app:v1`], {env: {TSKIT_CACHE: cache}});
    expect(ran.code).toBe(1);
    const error = ran.stderr.split('\n').filter((line) => line.startsWith('tskit: error:'));
    expect(error).toHaveLength(1);
    expect(error[0]).toMatch(new RegExp(`no space left writing blob ${layerDigest} of image ${registry.host}/big/app:v1 to ${join(cache, '.tskit', 'ingest')}/\\d+-[0-9a-f]{8}-[0-9a-f]{12} \\(ENOSPC\\): it needs 1\\.5 MiB, 1\\.\\d MiB of it written, \\d+ bytes free there`));
    // every blob in the cache hashes to its name, and the layer is not there
    const blobs = await readdir(join(cache, 'blobs', 'sha256')).catch(() => [] as string[]);
    expect(blobs).not.toContain(layerDigest.slice(7));
    for (const hex of blobs) expect(sha256(await readFile(join(cache, 'blobs', 'sha256', hex)))).toBe(`sha256:${hex}`);
    expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
    const verify = await runBounded(['cache', 'verify'], {env: {TSKIT_CACHE: cache}});
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('pulls the image whole once there is room', async () => {
    await rm(join(mountPoint, 'filler'));
    execFileSync('mount', ['-o', 'remount,size=16m', mountPoint]);
    const cache = join(mountPoint, 'cache');
    const ran = await runBounded(['cache', 'pull', `${registry.host}/big/app:v1`], {env: {TSKIT_CACHE: cache}});
    expect(ran.code, ran.stderr).toBe(0);
    expect(sha256(await readFile(join(cache, 'blobs', 'sha256', layerDigest.slice(7))))).toBe(layerDigest);
  });

  it('fails the same way wherever the disk fills: the lock, a lease, a manifest, the index, a blob', async () => {
    // 64 KiB, filled to different levels, so each run runs out at a different write
    const tiny = join(work, 'tiny');
    await mkdir(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tskit-test-tmpfs', tiny]);
    try {
      const failedAt = new Set<string>();
      for (const fill of [0, 8, 40, 44, 52, 56, 60]) {
        execFileSync('sh', ['-c', `rm -rf ${tiny}/* && head -c ${fill}k /dev/zero > ${tiny}/filler`]);
        const cache = join(tiny, 'cache');
        const ran = await runBounded(['cache', 'pull', `${registry.host}/small/app:v1`], {env: {TSKIT_CACHE: cache}});
        if (ran.code === 0) continue;
        expect(ran.code).toBe(1);
        const error = ran.stderr.split('\n').filter((line) => line.startsWith('tskit: error:'));
        expect(error, ran.stderr).toHaveLength(1);
        expect(ran.stderr).not.toMatch(/^\s+at /m);
        const what = /^tskit: error: no space left writing (.+?) to (\/\S+) \(ENOSPC\): it needs \d+ bytes/.exec(error[0]!);
        expect(what, error[0]).not.toBeNull();
        failedAt.add(what![1]!.replace(/\/tmp\/\S+/g, 'PATH').replace(/sha256:[0-9a-f]+/, 'DIGEST'));
        // a blob may stay when the disk filled after it was verified, but only under its own digest
        const blobs = await readdir(join(cache, 'blobs', 'sha256')).catch(() => [] as string[]);
        for (const hex of blobs) expect(sha256(await readFile(join(cache, 'blobs', 'sha256', hex)))).toBe(`sha256:${hex}`);
        expect(await leftovers(cache)).toEqual({ingest: [], leases: [], lock: false});
      }
      // the runs ran out at several different writes
      expect(failedAt.size, [...failedAt].join('\n')).toBeGreaterThanOrEqual(3);
    } finally {
      execFileSync('umount', [tiny]);
    }
  });
});
