// `tskit build` end to end: the built CLI against the fixtures in a real docker-registry.
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {gunzipSync} from 'node:zlib';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, jsonLines, ROOT, tskit} from '../support/cli.ts';
import {dir, file, hardlink, symlink} from '../support/entries.ts';
import {tarOf} from '../support/memory-images.ts';
import {pushLayout, registryBlobPath, writeOciLayout} from '../support/oci-images.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const registry = inject('tskitRegistry');
const mirror = inject('tskitMirror');
const fixtures = inject('tskitFixtures');
let work: string;

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

async function yaml(name: string, text: string): Promise<string> {
  const path = join(work, name);
  await writeFile(path, text);
  return path;
}

// --mirror right before the file: a repeatable flag must not swallow the positional argument
const build = (args: string[], cache: string, env: Record<string, string> = {}) =>
  tskit(['build', ...args.slice(0, -1), '--mirror', mirror, ...args.slice(-1)], {env: {TSKIT_CACHE: cache, ...env}});

function tarList(path: string): string[] {
  return execFileSync('tar', ['-tvf', path, '--numeric-owner'], {encoding: 'utf8', maxBuffer: 64 << 20}).trim().split('\n');
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-build-e2e-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('tskit build', () => {
  it('builds templates/hello.yml from the registry, reproducibly, and the warm cache needs no registry', async () => {
    const cache = join(work, 'cache-hello');
    const out1 = join(work, 'out1');
    const first = await build(['--format', 'kernel+initrd', '--format', 'tar', '--name', 'hello', '--dir', out1, join(ROOT, 'templates/hello.yml')], cache);
    expect(first.stderr).toBe(first.stderr); // printed for the failure message below
    expect(first.code, first.stderr).toBe(0);
    expect((await readdir(out1)).sort()).toEqual(['hello-cmdline', 'hello-initrd.img', 'hello-kernel', 'hello.tar']);
    expect(await readFile(join(out1, 'hello-cmdline'), 'utf8')).toBe('console=ttyS0 panic=1');

    // the initrd is a gzip'd newc cpio holding the LinuxKit layout
    const cpio = gunzipSync(await readFile(join(out1, 'hello-initrd.img')));
    const listing = execFileSync('cpio', ['-tv', '--quiet'], {input: cpio, encoding: 'utf8', maxBuffer: 64 << 20});
    expect(listing).toMatch(/containers\/onboot\/000-hello\/config\.json/);
    expect(listing).toMatch(/containers\/onboot\/000-hello\/lower\/bin\/busybox/); // unpacked once, the service binds it
    expect(listing).toMatch(/etc\/hello\/greeting/);
    const config = JSON.parse(execFileSync('cpio', ['-i', '--quiet', '--to-stdout', 'containers/onboot/000-hello/config.json'], {input: cpio, encoding: 'utf8'}));
    expect(config.process.args).toEqual(['/bin/sh', '-c', 'm=OK; echo "HELLO-$m $(cat /etc/hello/greeting)"']);

    // a second build from a fresh cache gives the same bytes
    const out2 = join(work, 'out2');
    const second = await build(['--format', 'kernel+initrd', '--format', 'tar', '--name', 'hello', '--dir', out2, join(ROOT, 'templates/hello.yml')], join(work, 'cache-hello-2'));
    expect(second.code, second.stderr).toBe(0);
    for (const name of ['hello-kernel', 'hello-initrd.img', 'hello-cmdline', 'hello.tar']) {
      expect(await sha256(join(out2, name)), name).toBe(await sha256(join(out1, name)));
    }

    // a warm rebuild plans from the layer headers saved by the first build: same bytes again
    const out3 = join(work, 'out3');
    const third = await build(['--format', 'kernel+initrd', '--format', 'tar', '--name', 'hello', '--dir', out3, join(ROOT, 'templates/hello.yml')], cache);
    expect(third.code, third.stderr).toBe(0);
    for (const name of ['hello-kernel', 'hello-initrd.img', 'hello-cmdline', 'hello.tar']) {
      expect(await sha256(join(out3, name)), name).toBe(await sha256(join(out1, name)));
    }

    // pinned by digest and cached: builds with the registry unreachable
    const pinned = (await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')).replace(/(localhost:5000\/tskit\/[a-z]+):([\w.-]+)/g, (_m, repo: string, tag: string) => {
      const image = fixtures.images.find((i) => `localhost:5000/${i.ref}` === `${repo}:${tag}`);
      if (!image) throw new Error(`no fixture ${repo}:${tag}`);
      return `${repo}@${image.digest}`;
    });
    const pinnedYaml = await yaml('pinned.yml', pinned);
    const warmCache = join(work, 'cache-pinned');
    expect((await build(['--format', 'kernel+initrd', '--dir', join(work, 'pinned1'), pinnedYaml], warmCache)).code).toBe(0);
    const offline = await tskit(['build', '--mirror', 'localhost:5000=http://127.0.0.1:9', '--format', 'kernel+initrd', '--dir', join(work, 'pinned2'), pinnedYaml], {env: {TSKIT_CACHE: warmCache}});
    expect(offline.code, offline.stderr).toBe(0);
    expect(await sha256(join(work, 'pinned2', 'pinned-initrd.img'))).toBe(await sha256(join(work, 'pinned1', 'pinned-initrd.img')));
  });

  it('puts format: oci volumes in as OCI layouts that skopeo reads, with the platforms asked for', async () => {
    const config = await yaml(
      'oci-volume.yml',
      'volumes:\n  - name: two\n    image: localhost:5000/tskit/multiarch:1\n    format: oci\n    platforms: [linux/amd64, linux/arm64]\n  - name: every\n    image: localhost:5000/tskit/multiarch:1\n    format: oci\n',
    );
    const out = join(work, 'oci-volume');
    const ran = await build(['--format', 'tar', '--dir', out, config], join(work, 'cache-oci-volume'));
    expect(ran.code, ran.stderr).toBe(0);
    const x = join(work, 'oci-volume-x');
    await mkdir(x);
    execFileSync('tar', ['-xf', join(out, 'oci-volume.tar'), '-C', x]);
    const arches = async (volume: string) => {
      const layout = join(x, 'containers/volumes', volume, 'lower');
      const found: string[] = [];
      for (const arch of ['amd64', 'arm64', 'riscv64']) {
        try {
          execFileSync('skopeo', ['inspect', '--override-arch', arch, `oci:${layout}:localhost:5000/tskit/multiarch:1`], {stdio: 'pipe'});
          found.push(arch);
        } catch {
          // that platform's image is not in the layout
        }
      }
      return found;
    };
    expect(await arches('two')).toEqual(['amd64', 'arm64']);
    expect(await arches('every')).toEqual(['amd64', 'arm64', 'riscv64']);
  });

  it('picks the platform asked for from a multi-arch index', async () => {
    const config = await yaml('multi.yml', 'onboot:\n  - name: which\n    image: localhost:5000/tskit/multiarch:1\n    readonly: true\n');
    for (const arch of ['amd64', 'arm64', 'riscv64']) {
      const out = join(work, `multi-${arch}`);
      const ran = await build(['--format', 'tar', '--arch', arch, '--dir', out, config], join(work, 'cache-multi'));
      expect(ran.code, ran.stderr).toBe(0);
      const text = execFileSync('tar', ['-xOf', join(out, 'multi.tar'), 'containers/onboot/000-which/rootfs/arch'], {encoding: 'utf8'});
      expect(text.trim()).toContain(arch);
    }
  });

  it('fails on a tampered blob, naming the image and digest, and writes nothing', async () => {
    const storage = join(work, 'tampered-storage');
    await cp(join(ROOT, '.fixtures', 'registry'), join(work, 'fixture-registry-copy'), {recursive: true});
    const key = (await readdir(join(work, 'fixture-registry-copy')))[0]!;
    await rm(storage, {recursive: true, force: true});
    await cp(join(work, 'fixture-registry-copy', key), storage, {recursive: true});
    const busybox = fixtures.images.find((i) => i.ref === 'tskit/busybox:1')!;
    const blobOf = async (digest: string) => JSON.parse(await readFile(join(busybox.layout, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
    const manifest = await blobOf(busybox.digest);
    const layerDigest: string = manifest.layers.at(-1).digest;
    const blob = registryBlobPath(storage, layerDigest);
    const bytes = await readFile(blob);
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(blob, bytes);
    const tampered = await startRegistry({storageDir: storage});
    try {
      const out = join(work, 'tampered-out');
      const ran = await tskit(['build', '--mirror', `localhost:5000=${tampered.url}`, '--dir', out, join(ROOT, 'templates/hello.yml')], {env: {TSKIT_CACHE: join(work, 'cache-tampered')}});
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain('localhost:5000/tskit/busybox:1');
      expect(ran.stderr).toContain(layerDigest);
      expect(await readdir(out).catch(() => [])).toEqual([]);
    } finally {
      await tampered.stop();
    }
  });

  it('keeps every entry of a malicious layer inside the image', async () => {
    const own = await startRegistry();
    try {
      const layer = await tarOf([
        dir('etc'),
        file('etc/ok', 'fine'),
        symlink('escape', '/etc'),
        symlink('climb', '../../../../../../etc'),
        file('escape/through-absolute', 'stays inside'),
        file('climb/through-relative', 'stays inside'),
        file('/abs/name', 'rooted at the image'),
        hardlink('hl', 'etc/ok'),
      ]);
      const layout = await writeOciLayout(join(work, 'evil-layout'), 'v1', {architecture: 'amd64', layers: [layer]});
      await pushLayout(layout, own.host, 'evil:1');
      const config = await yaml('evil.yml', `onboot:\n  - name: evil\n    image: ${own.host}/evil:1\n    readonly: true\n`);
      const out = join(work, 'evil-out');
      const ran = await tskit(['build', '--format', 'tar', '--dir', out, config], {env: {TSKIT_CACHE: join(work, 'cache-evil')}});
      expect(ran.code, ran.stderr).toBe(0);
      const entries = tarList(join(out, 'evil.tar')).map((line) => line.split(/\s+/).slice(5).join(' '));
      const root = 'containers/onboot/000-evil/rootfs/';
      expect(entries).toContain(`${root}etc/through-absolute`);
      expect(entries).toContain(`${root}etc/through-relative`);
      expect(entries).toContain(`${root}abs/name`);
      expect(entries).toContain(`${root}hl link to ${root}etc/ok`);
      // extracting the image writes nothing outside the extraction directory
      const x = join(work, 'evil-x');
      await mkdir(x);
      execFileSync('tar', ['-xf', join(out, 'evil.tar'), '-C', x]);
      expect(await readFile(join(x, root, 'etc/through-absolute'), 'utf8')).toBe('stays inside');

      // a name that climbs out is refused, naming the layer
      const climbing = await writeOciLayout(join(work, 'climb-layout'), 'v1', {architecture: 'amd64', layers: [await tarOf([file('../../outside', 'x')])]});
      await pushLayout(climbing, own.host, 'climb:1');
      const bad = await yaml('climb.yml', `onboot:\n  - name: climb\n    image: ${own.host}/climb:1\n`);
      const refused = await tskit(['build', '--format', 'tar', '--dir', join(work, 'climb-out'), bad], {env: {TSKIT_CACHE: join(work, 'cache-evil')}});
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/layer 1\/1 \(sha256:[0-9a-f]+\) of .*climb:1: entry "\.\.\/\.\.\/outside" climbs out of the image root/);
      expect(await readdir(join(work, 'climb-out')).catch(() => [])).toEqual([]);
    } finally {
      await own.stop();
    }
  });

  it('leaves no output and no temp file when interrupted mid-write (SIGINT, SIGTERM)', async () => {
    // a sparse 3.5 GiB file of zeros keeps the build writing for a few seconds
    const big = join(work, 'big.bin');
    execFileSync('truncate', ['-s', '3584M', big]);
    const config = await yaml('big.yml', `kernel:\n  image: localhost:5000/tskit/kernel:6.1\n  cmdline: console=ttyS0\nfiles:\n  - path: big.bin\n    source: ${big}\n`);
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const out = join(work, `interrupted-${signal}`);
      const {spawn} = await import('node:child_process');
      const {NODE, BIN} = await import('../support/cli.ts');
      const child = spawn(NODE, [BIN, 'build', '--mirror', mirror, '--format', 'kernel+initrd', '--dir', out, config], {env: {...process.env, TSKIT_CACHE: join(work, 'cache-hello')}, stdio: ['ignore', 'pipe', 'pipe']});
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      // wait until the staged outputs exist, then interrupt
      for (let i = 0; i < 600; i++) {
        const names = await readdir(out).catch(() => [] as string[]);
        if (names.some((n) => n.includes('tskit-tmp'))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await readdir(out)).some((n) => n.includes('tskit-tmp')), 'the build got to writing').toBe(true);
      child.kill(signal);
      expect(await exited, stderr).toBe(code);
      expect(await readdir(out)).toEqual([]);
    }
  });

  it('reports configuration problems with file:line:col and exits 1', async () => {
    const config = await yaml('bad.yml', 'onboot:\n  - name: x\n    image: localhost:5000/tskit/busybox:1\n    capabilities: [CAP_NOPE]\n');
    const ran = await build(['--dir', join(work, 'bad-out'), config], join(work, 'cache-bad'));
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`${config}:4:20`);
    expect(ran.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('prints NDJSON events and the result with --json', async () => {
    const ran = await build(['--json', '--format', 'tar', '--dir', join(work, 'json-out'), join(ROOT, 'templates/hello.yml')], join(work, 'cache-hello'));
    expect(ran.code, ran.stderr).toBe(0);
    const events = jsonLines(ran.stdout);
    expect(events.filter((e) => e.type === 'image.resolved')).toHaveLength(4);
    expect(events.find((e) => e.type === 'artifact.written')).toMatchObject({format: 'tar', path: join(work, 'json-out', 'hello.tar')});
    expect(events.at(-1)).toMatchObject({type: 'result'});
  });
});

void registry;
