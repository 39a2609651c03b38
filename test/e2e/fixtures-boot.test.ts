// Proves the fixture images before tskit's build exists: an initramfs assembled by hand the way
// LinuxKit lays one out (init + runc images at /, kernel.tar's modules, containers/<section>/
// bundles with LinuxKit's config.json/runtime.json, a files: entry), packed with cpio(1), booted
// in QEMU. Every marker is printed by a process runc started from config.json - the init never
// prints them, and they do not appear literally in any config.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ensureFixtures, type FixtureSet} from '../fixtures/make-fixtures.ts';
import {assembleRoot, fixtureUcode, packInitramfs, type HandImage} from '../fixtures/lib/hand-initramfs.ts';
import {bootQemu} from '../fixtures/lib/qemu-boot.ts';

const MESSAGE = 'files-entry-says-hi';

const readonlyMarker: HandImage['containers'][number] = {
  section: 'onboot',
  name: '000-ro',
  image: 'tskit/busybox:1',
  readonly: true,
  binds: ['/etc/tskit:/etc/tskit:ro'],
  command: ['/bin/sh', '-c', 'm=OK; if touch /probe 2>/dev/null; then echo "root is writable"; exit 3; fi; echo "RO-$m $(cat /etc/tskit/message)"'],
};

const readWriteMarker: HandImage['containers'][number] = {
  section: 'onboot',
  name: '001-rw',
  image: 'tskit/busybox:1',
  // LinuxKit's default bind options: rw,rbind,rshared
  binds: ['/etc/tskit:/etc/tskit'],
  command: [
    '/bin/sh',
    '-c',
    // the whiteouts of the busybox image's second layer must have been applied
    'm=OK; [ ! -e /etc/fixture/layer1-deleted ] && [ ! -e /etc/fixture/opaque/layer1-hidden ] && [ -e /etc/fixture/opaque/layer2-kept ] || { echo "whiteouts not applied"; exit 4; }; echo up >/written && echo "RW-$m $(cat /written) $(cat /etc/tskit/message)"',
  ],
};

let set: FixtureSet;
let work: string;

beforeAll(async () => {
  set = await ensureFixtures();
  work = await mkdtemp(join(tmpdir(), 'tskit-fixtures-boot-'));
});

afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true});
});

describe('fixture init, runc and busybox images booted by hand in QEMU', () => {
  it('runs read-only and read-write onboot containers, runtime.json extras, a service and onshutdown (root moved to tmpfs, ucode prepended)', async () => {
    const root = join(work, 'full', 'root');
    const {kernel} = await assembleRoot(set, root, {
      containers: [
        readonlyMarker,
        readWriteMarker,
        {
          // runtime.json bindNS needs create/prepare/start; mkdir and cgroups run before create
          section: 'onboot',
          name: '002-runtime',
          image: 'tskit/busybox:1',
          readonly: true,
          runtime: {bindNS: {pid: '/run/tskit-ns/pid'}, mkdir: ['/run/tskit-mkdir'], cgroups: ['tskit-test']},
          command: ['/bin/sh', '-c', 'm=OK; echo "CREATED-$m"'],
        },
        {
          // looks at PID 1's view: the namespace bind, the mkdir, the cgroup, the ucode cpio
          section: 'onboot',
          name: '003-check',
          image: 'tskit/busybox:1',
          readonly: true,
          pid: 'host',
          capabilities: ['CAP_SYS_PTRACE', 'CAP_DAC_READ_SEARCH'],
          binds: ['/kernel/x86/microcode:/ucode:ro'],
          command: [
            '/bin/sh',
            '-c',
            'bad=; grep -q " /run/tskit-ns/pid nsfs " /proc/1/mounts || bad="$bad bindNS"; [ -d /proc/1/root/run/tskit-mkdir ] || bad="$bad mkdir"; [ -d /proc/1/root/sys/fs/cgroup/tskit-test ] || bad="$bad cgroups"; m=OK; [ -z "$bad" ] && echo "CHECK-$m $(cat /ucode/GenuineIntel.bin)" || echo "check failed:$bad"',
          ],
        },
        {
          section: 'services',
          name: 'heartbeat',
          image: 'tskit/busybox:1',
          readonly: true,
          command: ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); echo "BEAT-$i"; sleep 1; done'],
        },
        {
          // busybox poweroff without -f signals PID 1 (SIGUSR2): the init's clean shutdown
          section: 'services',
          name: 'stopper',
          image: 'tskit/busybox:1',
          readonly: true,
          pid: 'host',
          command: ['/bin/sh', '-c', 'sleep 2; poweroff'],
        },
        {
          section: 'onshutdown',
          name: '000-bye',
          image: 'tskit/busybox:1',
          readonly: true,
          command: ['/bin/sh', '-c', 'm=OK; echo "BYE-$m"'],
        },
      ],
      files: [{path: '/etc/tskit/message', contents: `${MESSAGE}\n`, mode: 0o644}],
    });
    const initrd = join(work, 'full', 'initrd.img');
    const size = await packInitramfs(root, initrd, await fixtureUcode(set, work));
    const boot = bootQemu({kernel, initrd, append: 'console=ttyS0 panic=1'});
    try {
      const ro = await boot.waitFor(new RegExp(`^RO-OK ${MESSAGE}$`, 'm'), 90_000);
      await boot.waitFor(new RegExp(`^RW-OK up ${MESSAGE}$`, 'm'), 30_000);
      await boot.waitFor(/^CREATED-OK$/m, 30_000);
      await boot.waitFor(/^CHECK-OK tskit fixture: not real microcode$/m, 30_000);
      await boot.waitFor(/^BEAT-1$/m, 30_000);
      await boot.waitFor(/^BYE-OK$/m, 60_000);
      const code = await boot.waitExit(60_000);
      const out = boot.output;
      expect(out).toContain('tskit-init: root moved to a tmpfs');
      expect(out).toContain('tskit-init: onboot 000-ro exited 0');
      expect(out).toContain('tskit-init: onboot 001-rw exited 0');
      expect(out).toContain('tskit-init: onboot 002-runtime exited (status not observable');
      expect(out).toContain('tskit-init: onboot 003-check exited 0');
      expect(out).toMatch(/tskit-init: service heartbeat started \(pid \d+\)/);
      expect(out).toContain('tskit-init: onshutdown 000-bye exited 0');
      expect(out).toContain('tskit-init: poweroff');
      // onshutdown ran after the services phase, and before the services were stopped
      expect(out.indexOf('tskit-init: boot complete')).toBeLessThan(out.indexOf('BYE-OK'));
      expect(out.indexOf('BYE-OK')).toBeLessThan(out.indexOf('tskit-init: service heartbeat stopped'));
      expect(code).toBe(0);
      console.info(`[fixtures-boot] full: initrd ${(size / 1e6).toFixed(1)} MB, first marker after ${(ro.atMs / 1000).toFixed(1)} s, powered off after ${(boot.elapsed() / 1000).toFixed(1)} s`);
    } finally {
      await boot.stop();
    }
  });

  it('runs with tskit.nopivot (runc --no-pivot on the initramfs root) and powers off on tskit.poweroff', async () => {
    const root = join(work, 'nopivot', 'root');
    const {kernel} = await assembleRoot(set, root, {
      containers: [readonlyMarker, readWriteMarker],
      files: [{path: '/etc/tskit/message', contents: `${MESSAGE}\n`, mode: 0o644}],
    });
    const initrd = join(work, 'nopivot', 'initrd.img');
    const size = await packInitramfs(root, initrd);
    const boot = bootQemu({kernel, initrd, append: 'console=ttyS0 panic=1 tskit.nopivot tskit.poweroff=1'});
    try {
      const ro = await boot.waitFor(new RegExp(`^RO-OK ${MESSAGE}$`, 'm'), 90_000);
      const rw = await boot.waitFor(new RegExp(`^RW-OK up ${MESSAGE}$`, 'm'), 30_000);
      expect(await boot.waitExit(60_000)).toBe(0);
      expect(boot.output).not.toContain('root moved to a tmpfs');
      expect(boot.output).toContain('tskit-init: tskit.poweroff deadline reached');
      console.info(`[fixtures-boot] nopivot: initrd ${(size / 1e6).toFixed(1)} MB, RO marker after ${(ro.atMs / 1000).toFixed(1)} s, RW after ${(rw.atMs / 1000).toFixed(1)} s`);
    } finally {
      await boot.stop();
    }
  });
});
