import {execFileSync} from 'node:child_process';
import {mkdtempSync, readdirSync, readFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {gunzipSync} from 'node:zlib';
import {beforeAll, describe, expect, it} from 'vitest';
import {assemble, resolveImages} from '../../../src/build/assemble.ts';
import {build} from '../../../src/build/build.ts';
import type {MobyConfig} from '../../../src/config/types.ts';
import {collect, dir, file, hardlink, symlink} from '../../support/entries.ts';
import {MemoryImages, tarOf} from '../../support/memory-images.ts';

const platform = {architecture: 'amd64', os: 'linux'};
const images = new MemoryImages();
const ucode = Buffer.from('070701'.padEnd(110, '0') + 'ucode-test');

const config: MobyConfig = {
  kernel: {image: 'test/kernel:1', cmdline: 'console=ttyS0 quiet', ucode: 'ucode.cpio'},
  init: ['test/init:1', 'test/runc:1'],
  onboot: [
    {name: 'hello', image: 'test/busybox:1', readonly: true, command: ['/bin/echo', 'HELLO']},
    {name: 'rw', image: 'test/busybox:1', command: ['/bin/true']},
  ],
  services: [{name: 'svc', image: 'test/other:1'}],
  files: [
    {path: 'etc/hello', contents: 'hi\n', mode: '0644'},
    {path: '/var/lib/app/data', contents: 'x', uid: 'svc', mode: '0600'},
  ],
  volumes: [{name: 'vol', image: 'test/other:1'}],
};

beforeAll(async () => {
  const kernelTar = await tarOf([dir('lib'), dir('lib/modules'), dir('lib/modules/6.1'), file('lib/modules/6.1/overlay.ko', 'module')]);
  await images.add('test/kernel:1', [[file('kernel', 'BZIMAGE'), file('kernel.tar', kernelTar), file('ucode.cpio', ucode), file('System.map', 'map')]]);
  await images.add('test/init:1', [[dir('bin'), file('bin/busybox', 'bb', {mode: 0o755}), hardlink('bin/sh', 'bin/busybox'), file('init', '#!/bin/sh', {mode: 0o755}), dir('etc'), file('etc/hostname', 'dropped')]]);
  await images.add('test/runc:1', [[dir('usr'), dir('usr/bin'), file('usr/bin/runc', 'runc', {mode: 0o755}), file('init', '#!/bin/sh v2', {mode: 0o755})]]);
  await images.add('test/busybox:1', [[dir('bin'), file('bin/sh', 'sh', {mode: 0o755}), file('.dockerenv', '')], [file('bin/echo', 'echo', {mode: 0o755})]], {Cmd: ['/bin/sh'], Env: ['PATH=/bin']});
  await images.add('test/other:1', [[dir('etc'), file('etc/mtab', 'own mtab'), symlink('lib', 'usr/lib')]]);
});

async function entries() {
  const resolved = await resolveImages(config, {source: images, platform});
  return collect(assemble(config, resolved, {source: images, platform, mtime: 42, cwd: '/', emit: () => {}, metadata: () => ''}));
}

describe('assemble', () => {
  it('gives several init images one Alpine package database, the union, as LinuxKit does', async () => {
    const own = new MemoryImages();
    await own.add('a:1', [[dir('lib'), dir('lib/apk'), dir('lib/apk/db'), file('lib/apk/db/installed', 'P:musl\n')]]);
    await own.add('b:1', [[file('lib/apk/db/installed', 'P:old\n')], [file('lib/apk/db/installed', 'P:runc\n')]]);
    await own.add('c:1', [[file('bin/x', 'no database here')]]);
    const cfg: MobyConfig = {init: ['a:1', 'b:1', 'c:1']};
    const resolved = await resolveImages(cfg, {source: own, platform});
    const out = await collect(assemble(cfg, resolved, {source: own, platform, mtime: 42, cwd: '/', emit: () => {}, metadata: () => ''}));
    const dbs = out.filter((e) => e.path === 'lib/apk/db/installed').map((e) => e.content);
    expect(dbs.at(-1)).toBe('P:musl\n\n\nP:runc\n\n\n');
  });

  it('lays the image out as LinuxKit does, each path once and parents first', async () => {
    const out = await entries();
    const paths = out.map((e) => e.path);
    expect(new Set(paths).size).toBe(paths.length);
    for (const [i, path] of paths.entries()) {
      const parent = path.slice(0, path.lastIndexOf('/'));
      if (parent) expect(paths.indexOf(parent), `${parent} before ${path}`).toBeLessThan(i);
    }
    expect(paths.slice(0, 4)).toEqual(['boot', 'boot/cmdline', 'boot/kernel', 'lib']);
    expect(paths).toContain('boot/ucode.cpio');
    expect(paths).toContain('lib/modules/6.1/overlay.ko');
    expect(paths).not.toContain('System.map');
    // init images overlay each other: the later init wins, LinuxKit drops etc/hostname
    expect(out.find((e) => e.path === 'init')?.content).toBe('#!/bin/sh v2');
    expect(paths).not.toContain('etc/hostname');
    expect(out.find((e) => e.path === 'etc/resolv.conf')).toMatchObject({type: 'symlink', linkname: '/run/resolvconf/resolv.conf'});
    expect(out.find((e) => e.path === 'bin/sh')).toMatchObject({type: 'hardlink', linkname: 'bin/busybox'});
    // a readonly bundle unpacks into rootfs/, a read-write one into lower/
    expect(paths).toContain('containers/onboot/000-hello/rootfs/bin/echo');
    expect(paths).not.toContain('containers/onboot/000-hello/rootfs/.dockerenv');
    expect(out.find((e) => e.path === 'containers/onboot/000-hello/rootfs/etc/hosts')?.content).toContain('127.0.0.1       localhost');
    expect(out.find((e) => e.path === 'containers/onboot/000-hello/rootfs/etc/resolv.conf')?.content).toBe('\n# no resolv.conf configured\n');
    // the same image a second time is not unpacked again: its overlay reads the first copy
    expect(paths.filter((p) => p.startsWith('containers/onboot/001-rw'))).toEqual([
      'containers/onboot/001-rw',
      'containers/onboot/001-rw/config.json',
      'containers/onboot/001-rw/tmp',
      'containers/onboot/001-rw/rootfs',
      'containers/onboot/001-rw/runtime.json',
    ]);
    const runtime = JSON.parse(out.find((e) => e.path === 'containers/onboot/001-rw/runtime.json')!.content!);
    expect(runtime.mounts[2].options).toEqual([
      'lowerdir=/containers/onboot/000-hello/rootfs',
      'upperdir=/containers/onboot/001-rw/tmp/upper',
      'workdir=/containers/onboot/001-rw/tmp/work',
    ]);
    expect(paths).toContain('containers/services/svc/lower/etc/mtab');
    expect(out.find((e) => e.path === 'containers/services/svc/lower/etc/mtab')?.content).toBe('own mtab');
    expect(paths).toContain('containers/volumes/vol/lower/lib');
    expect(paths).toContain('containers/volumes/vol/merged');
    // files: leading directories get LinuxKit's modes and the named owner
    const varDir = out.find((e) => e.path === 'var/lib/app');
    expect(varDir?.mode).toBe(0o700);
    expect(out.find((e) => e.path === 'etc/hello')?.content).toBe('hi\n');
  });

  it('writes kernel+initrd with the microcode first and a cpio the tools read', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tskit-build-'));
    const artifacts = await build({config, formats: ['kernel+initrd', 'tar'], target: {dir: work, name: 'hello'}, source: images, platform, cwd: '/', emit: () => {}, metadata: () => ''});
    expect(artifacts.map((a) => a.path.slice(work.length + 1))).toEqual(['hello-kernel', 'hello-initrd.img', 'hello-cmdline', 'hello.tar']);
    expect(readFileSync(join(work, 'hello-kernel'), 'utf8')).toBe('BZIMAGE');
    expect(readFileSync(join(work, 'hello-cmdline'), 'utf8')).toBe('console=ttyS0 quiet');
    const initrd = readFileSync(join(work, 'hello-initrd.img'));
    expect(initrd.subarray(0, ucode.length).equals(ucode)).toBe(true);
    const cpio = gunzipSync(initrd.subarray(ucode.length));
    const listing = execFileSync('cpio', ['-t', '--quiet'], {input: cpio, encoding: 'utf8'}).trim().split('\n');
    expect(listing[0]).toBe('boot');
    expect(listing).not.toContain('boot/kernel');
    expect(listing).toContain('containers/onboot/000-hello/config.json');
    const tarListing = execFileSync('tar', ['-tf', join(work, 'hello.tar')], {encoding: 'utf8'});
    expect(tarListing).toContain('boot/kernel');
    expect(readdirSync(work).filter((f) => f.includes('tskit-tmp'))).toEqual([]);
  });

  it('is reproducible: the same inputs give the same bytes', async () => {
    const a = mkdtempSync(join(tmpdir(), 'tskit-build-'));
    const b = mkdtempSync(join(tmpdir(), 'tskit-build-'));
    const run = (dir: string) => build({config, formats: ['kernel+initrd', 'tar'], target: {dir, name: 'x'}, source: images, platform, cwd: '/', emit: () => {}, metadata: () => ''});
    const [first, second] = [await run(a), await run(b)];
    expect(first.map((x) => x.sha256)).toEqual(second.map((x) => x.sha256));
  });

  it('reads each layer once when an earlier build saved its headers, with the same result', async () => {
    const own = new MemoryImages();
    await own.add('test/busybox:1', [[dir('bin'), file('bin/sh', 'sh', {mode: 0o755})], [file('bin/echo', 'echo', {mode: 0o755})]]);
    const cfg: MobyConfig = {onboot: [{name: 'a', image: 'test/busybox:1', readonly: true}]};
    const run = async () => {
      const resolved = await resolveImages(cfg, {source: own, platform});
      return collect(assemble(cfg, resolved, {source: own, platform, mtime: 42, cwd: '/', emit: () => {}, metadata: () => ''}));
    };
    const first = await run();
    expect([...own.opened.values()]).toEqual([2, 2]); // no index yet: two passes
    own.opened.clear();
    expect(await run()).toEqual(first);
    expect([...own.opened.values()]).toEqual([1, 1]);

    // a damaged index is caught against the layer itself
    const key = [...own.derived!.keys()][1]!;
    const rows = JSON.parse(own.derived!.get(key)!.toString());
    rows[0][0] = 'bin/elsewhere';
    own.derived!.set(key, Buffer.from(JSON.stringify(rows)));
    await expect(run()).rejects.toThrow(/entry 1 is "bin\/echo", but the saved index of this layer says "bin\/elsewhere"/);
  });

  it('leaves nothing behind when a layer fails mid-build', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tskit-build-'));
    const busybox = await images.resolve('test/busybox:1', platform);
    images.failOn = busybox.layers[1]!.digest;
    try {
      await expect(build({config, formats: ['tar', 'kernel+initrd'], target: {dir: work, name: 'x'}, source: images, platform, cwd: '/', emit: () => {}, metadata: () => ''})).rejects.toThrow(
        /simulated failure/,
      );
    } finally {
      delete images.failOn;
    }
    expect(readdirSync(work)).toEqual([]);
  });
});
