// The formats and run options tskit gained from LinuxKit (issue 16) boot to the hello marker
// under `tskit run qemu`: kernel+squashfs, kernel+erofs and kernel+iso on the fixture kernel
// that mounts its root from /dev/sda (/dev/sr0) itself (no initrd; the root is the image), the
// iso-efi-initrd ISO under OVMF, and `--data`/`--data-file` (LinuxKit's metadata CD) read by
// the guest.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';
import {builtinHello} from '../support/builtin-kernel.ts';

const mirror = inject('tskitMirror');
let work: string;
let cache: string;

const build = (args: string[]) => tskit(['build', ...args.slice(0, -1), '--mirror', mirror, ...args.slice(-1)], {env: {TSKIT_CACHE: cache}, timeout: 300_000});

async function boot(args: string[], marker = 'HELLO-OK', timeout = '150s') {
  const started = Date.now();
  const run = await tskit(['run', 'qemu', '--wait-for', marker, '--timeout', timeout, ...args], {timeout: (parseInt(timeout, 10) + 60) * 1000});
  const seconds = (Date.now() - started) / 1000;
  expect(run.code, `${run.stderr}\n${run.stdout.slice(-3000)}`).toBe(0);
  console.info(`[lk-boot] ${args.join(' ')}: ${marker} after ${seconds.toFixed(1)} s`);
  return run;
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-lkboot-'));
  cache = join(work, 'cache');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('kernel+squashfs, kernel+erofs and kernel+iso', () => {
  it('boot with the root mounted from the image (squashfs, erofs, ISO 9660 with Rock Ridge)', async () => {
    const yml = join(work, 'hello.yml');
    await writeFile(yml, builtinHello(await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')));
    const built = await build(['-f', 'kernel+squashfs,kernel+erofs,kernel+iso', '--dir', work, yml]);
    expect(built.code, built.stderr).toBe(0);
    // NAME alone boots the squashfs (LinuxKit's choice when there is one); -erofs.img names the
    // other; --format kernel+iso picks NAME.iso (the root on the first CD, /dev/sr0)
    for (const [args, type] of [[[join(work, 'hello')], 'squashfs'], [[join(work, 'hello-erofs.img')], 'erofs'], [['--format', 'kernel+iso', join(work, 'hello')], 'iso9660']] as const) {
      const run = await boot([...args]);
      expect(run.stdout).toMatch(/^HELLO-OK greetings-from-a-files-entry\r?$/m);
      expect(run.stdout).toMatch(new RegExp(`VFS: Mounted root \\(${type} filesystem\\) readonly`));
      // the init stays on the disk root (busybox's stat has no name for erofs's magic)
      expect(run.stdout).toMatch(/tskit-init: starting \(root on (squashfs|UNKNOWN|isofs)\)/);
      expect(run.stdout).not.toMatch(/root moved to a tmpfs/);
    }
  }, 600_000);
});

describe('iso-efi-initrd', () => {
  it('boots under OVMF', async () => {
    const built = await build(['-f', 'iso-efi-initrd', '--dir', work, join(ROOT, 'templates/hello.yml')]);
    expect(built.code, built.stderr).toBe(0);
    const run = await boot([join(work, 'hello-efi-initrd.iso')], 'HELLO-OK', '180s');
    expect(run.stderr).toMatch(/UEFI/);
  }, 400_000);
});

describe('run qemu --data / --data-file', () => {
  const metadataYaml = (template: string) =>
    template.replace(
      'files:\n',
      `files:
  - path: etc/init.d/050-metadata
    mode: "0755"
    contents: |
      #!/bin/sh
      i=0; while [ ! -b /dev/sr0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
      mkdir -p /run/md && mount -t iso9660 -o ro /dev/sr0 /run/md && echo "metadata: $(cat /run/md/config)"; umount /run/md
`,
    );

  it('hands the guest LinuxKit\'s metadata CD, from text or a file', async () => {
    const yml = join(work, 'data.yml');
    await writeFile(yml, metadataYaml(await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')));
    const built = await build(['--dir', work, yml]);
    expect(built.code, built.stderr).toBe(0);
    const value = `DATA-${process.pid}`;
    await boot(['--data', value, join(work, 'data')], `metadata: ${value}$`);
    await writeFile(join(work, 'data.json'), `{"from":"file-${process.pid}"}`);
    await boot(['--data-file', join(work, 'data.json'), join(work, 'data')], `metadata: \\{"from":"file-${process.pid}"\\}`);
    const both = await tskit(['run', 'qemu', '--data', 'x', '--data-file', join(work, 'data.json'), join(work, 'data')]);
    expect(both.code).toBe(2);
  }, 600_000);
});

describe('run qemu --arch arm64', () => {
  it('builds the arm64 fixtures with --arch arm64 and boots them in qemu-system-aarch64 (virt, TCG)', async () => {
    const dir = join(work, 'arm64');
    const built = await build(['--arch', 'arm64', '--dir', dir, join(ROOT, 'test/fixtures/yml/hello-arm64.yml')]);
    expect(built.code, built.stderr).toBe(0);
    const kernel = await readFile(join(dir, 'hello-arm64-kernel'));
    expect(kernel.subarray(0x38, 0x3c).toString('latin1')).toBe('ARM\x64'); // the arm64 Image header's magic
    const run = await boot(['--arch', 'arm64', '--verbose', join(dir, 'hello-arm64')], 'HELLO-OK', '420s');
    expect(run.stdout).toMatch(/^HELLO-OK greetings-from-a-files-entry\r?$/m);
    expect(run.stdout).toMatch(/Machine model: linux,dummy-virt/);
    expect(run.stderr).toMatch(/qemu-system-aarch64/);
  }, 600_000);
});
