// The `tskit cache` commands as a user runs them (the built CLI on Node 24), against the
// real docker-registry: pull, ls, export, import, rm, clean, verify, push; --json output;
// errors as a message and an exit code, never a stack.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {blobDigests} from '../support/oci-cache-helpers.ts';
import {inspectDigest, pushLayout, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';
import {ensureBuilt, jsonLines, tskit as run} from '../support/cli.ts';

let registry: RunningRegistry;
let work: string;
let cacheDir: string;
let a: WrittenLayout;
let b: WrittenLayout;

const tskit = (args: string[], env: Record<string, string> = {}) => run(args, {env: {TSKIT_CACHE: cacheDir, ...env}, timeout: 60_000});

beforeAll(async () => {
  await ensureBuilt();
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-cli-'));
  cacheDir = join(work, 'cache');
  const base = {'bin/base': 'base'};
  a = await writeOciLayout(join(work, 'a'), 'v1', [
    {architecture: 'amd64', layers: [base, {'a': 'amd64'}]},
    {architecture: 'arm64', layers: [base, {'a': 'arm64'}]},
  ]);
  b = await writeOciLayout(join(work, 'b'), 'v1', {architecture: 'amd64', layers: [base, {'b': 'b'}]});
  await pushLayout(a, registry.host, 'cli/a:v1');
  await pushLayout(b, registry.host, 'cli/b:v1');
}, 300_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('tskit cache', () => {
  it('pull (two architectures) and ls --json with shared and unique sizes', async () => {
    const pull = await tskit(['cache', 'pull', `${registry.host}/cli/a:v1`, '--arch', 'amd64', '--arch', 'aarch64', '--json']);
    expect(pull.code).toBe(0);
    const events = jsonLines(pull.stdout);
    expect(events.filter((e) => e.type === 'image.resolved').map((e) => `${e.ref} ${e.platform}`)).toEqual([
      `${registry.host}/cli/a:v1 linux/amd64`,
      `${registry.host}/cli/a:v1 linux/arm64`,
    ]);
    const single = await tskit(['cache', 'pull', `${registry.host}/cli/b:v1`, '--arch', 'x86_64']);
    expect(single.code).toBe(0);
    expect(single.stderr).toContain(`${registry.host}/cli/b:v1 (linux/amd64): ${b.images[0]!.manifest.digest}`);

    const ls = await tskit(['cache', 'ls', '--json']);
    expect(ls.code).toBe(0);
    const [listing] = jsonLines(ls.stdout) as Array<{images: Array<{ref: string; platforms: string[]; size: number; uniqueSize: number; sharedSize: number}>}>;
    const byRef = Object.fromEntries(listing!.images.map((i) => [i.ref.replace(`${registry.host}/`, ''), i]));
    expect(byRef['cli/a:v1']!.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(byRef['cli/b:v1']!.platforms).toEqual(['linux/amd64']);
    const baseSize = a.images[0]!.layers[0]!.size;
    expect(byRef['cli/b:v1']!.sharedSize).toBe(baseSize);
    expect(byRef['cli/a:v1']!.sharedSize).toBe(baseSize);

    const human = await tskit(['cache', 'ls']);
    expect(human.stdout).toMatch(/^IMAGE\s+DIGEST\s+PLATFORMS\s+SIZE\s+UNIQUE\s+SHARED/);
    expect(human.stdout).toContain(`${registry.host}/cli/a:v1`);
    expect(human.stdout).toContain('2 images in');
  });

  it('export -o and import round trip; push --to; verify', async () => {
    const file = join(work, 'b.tar');
    const exported = await tskit(['cache', 'export', `${registry.host}/cli/b:v1`, '-o', file]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(`exported ${registry.host}/cli/b:v1`);
    const other = join(work, 'other-cache');
    const imported = await tskit(['cache', 'import', file, '--cache-dir', other, '--json']);
    expect(imported.code).toBe(0);
    const result = jsonLines(imported.stdout).find((e) => e.type === 'result') as {images: Array<{ref: string; digest: string}>};
    expect(result.images).toEqual([expect.objectContaining({ref: `${registry.host}/cli/b:v1`, digest: b.images[0]!.manifest.digest})]);

    const pushed = await tskit(['cache', 'push', `${registry.host}/cli/b:v1`, '--to', `${registry.host}/cli/pushed:v9`, '--cache-dir', other]);
    expect(pushed.code).toBe(0);
    expect(await inspectDigest(registry.host, 'cli/pushed:v9')).toBe(b.images[0]!.manifest.digest);

    const verified = await tskit(['cache', 'verify', '--cache-dir', other]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('4 blobs checked, 0 damaged');
  });

  it('rm keeps the shared base layer; clean --unused and clean', async () => {
    const removed = await tskit(['cache', 'rm', `${registry.host}/cli/b:v1`, '--json']);
    expect(removed.code).toBe(0);
    const result = jsonLines(removed.stdout).find((e) => e.type === 'result') as {keptBlobs: string[]; deletedBlobs: string[]};
    expect(result.keptBlobs).toEqual([b.images[0]!.layers[0]!.digest]);
    expect(result.deletedBlobs).toHaveLength(3);
    expect(await blobDigests(cacheDir)).toContain(b.images[0]!.layers[0]!.digest);

    const unused = await tskit(['cache', 'clean', '--unused']);
    expect(unused.code).toBe(0);
    expect(unused.stdout).toContain('deleted 0 blobs');
    const all = await tskit(['cache', 'clean']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/removed 1 images; deleted \d+ blobs/);
    expect(await blobDigests(cacheDir)).toEqual([]);
  });

  it('errors print a message and exit non-zero, without a stack', async () => {
    const missing = await tskit(['cache', 'rm', 'alpine:3.20']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error: not in the cache');
    expect(missing.stderr).toContain('docker.io/library/alpine:3.20');
    expect(missing.stderr).not.toMatch(/\n\s+at /);

    const bad = await tskit(['cache', 'pull', 'Invalid//ref']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid image reference "Invalid//ref"');

    const http = await tskit(['cache', 'pull', 'example.com/x:1', '--mirror', 'http://192.0.2.200:5000']);
    expect(http.code).toBe(1);
    expect(http.stderr).toContain('--insecure-registry 192.0.2.200:5000');

    const viaEnv = await tskit(['cache', 'pull', 'mirrored.invalid/cli/b:v1'], {TSKIT_MIRROR: `mirrored.invalid=http://${registry.host}`});
    expect(viaEnv.code).toBe(0);
  });
});
