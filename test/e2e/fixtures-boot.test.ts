// Proves the fixture images before tskit's build exists: initramfs images assembled by hand
// from LinuxKit YAMLs the way LinuxKit lays one out (test/fixtures/lib/hand-initramfs.ts:
// init + runc images at /, kernel.tar, containers/<section>/ bundles with LinuxKit's
// config.json/runtime.json, files: entries), packed with cpio(1), booted in QEMU. Every marker
// is printed by a process runc started from config.json: the init never prints them, and they
// do not appear literally in any YAML or config.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ensureFixtures, REPO_ROOT, type FixtureSet} from '../fixtures/make-fixtures.ts';
import {initramfsFromYaml} from '../fixtures/lib/hand-initramfs.ts';
import {bootQemu} from '../fixtures/lib/qemu-boot.ts';

let set: FixtureSet;
let work: string;

beforeAll(async () => {
  set = await ensureFixtures();
  work = await mkdtemp(join(tmpdir(), 'tskit-fixtures-boot-'));
});

afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true});
});

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('fixture images booted in QEMU from hand-assembled initramfs images', () => {
  it('lifecycle.yml: read-only and read-write onboot, runtime.json extras, label merge, multi-arch, services, poweroff, onshutdown', async () => {
    const image = await initramfsFromYaml(set, join(REPO_ROOT, 'test/fixtures/yml/lifecycle.yml'), join(work, 'lifecycle'));
    expect(image.ucode?.length).toBeGreaterThan(0);
    const boot = bootQemu({kernel: image.kernel, initrd: image.initrd, append: image.cmdline});
    try {
      const first = await boot.waitFor(/^RO-OK lifecycle-files-entry$/m, 90_000);
      await boot.waitFor(/^RW-OK up lifecycle-files-entry$/m, 30_000);
      await boot.waitFor(/^CREATED-OK$/m, 30_000);
      await boot.waitFor(/^CHECK-OK tskit fixture: not real microcode$/m, 30_000);
      // CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21), from the label
      await boot.waitFor(/^LABELLED-from-the-label-test caps=0000000000201000$/m, 30_000);
      await boot.waitFor(/^ARCH-OK linux\/amd64$/m, 30_000);
      await boot.waitFor(/^BEAT-1$/m, 30_000);
      await boot.waitFor(/^BYE-OK$/m, 60_000);
      const code = await boot.waitExit(60_000);
      const out = boot.output;
      expect(out).toContain('tskit-init: root moved to a tmpfs');
      for (const name of ['000-ro', '001-rw', '003-check', '004-labelled', '005-multiarch']) {
        expect(out).toContain(`tskit-init: onboot ${name} exited 0`);
      }
      expect(out).toContain('tskit-init: onboot 002-runtime exited (status not observable');
      expect(out).toMatch(/tskit-init: service heartbeat started \(pid \d+\)/);
      expect(out).toContain('tskit-init: onshutdown 000-bye exited 0');
      expect(out).toContain('tskit-init: poweroff');
      // onshutdown ran after boot completed, and before the services were stopped
      expect(out.indexOf('tskit-init: boot complete')).toBeLessThan(out.indexOf('BYE-OK'));
      expect(out.indexOf('BYE-OK')).toBeLessThan(out.indexOf('tskit-init: service heartbeat stopped'));
      expect(code).toBe(0);
      console.info(`[fixtures-boot] lifecycle.yml: initrd ${(image.size / 1e6).toFixed(1)} MB, first marker after ${seconds(first.atMs)}, powered off after ${seconds(boot.elapsed())}`);
    } finally {
      await boot.stop();
    }
  });

  it('templates/hello.yml: HELLO-OK from a container reading a files: entry, then heartbeats (also: tskit.nopivot, tskit.poweroff)', async () => {
    const image = await initramfsFromYaml(set, join(REPO_ROOT, 'templates/hello.yml'), join(work, 'hello'));
    const boot = bootQemu({kernel: image.kernel, initrd: image.initrd, append: `${image.cmdline} tskit.nopivot tskit.poweroff=6`});
    try {
      const hello = await boot.waitFor(/^HELLO-OK greetings-from-a-files-entry$/m, 90_000);
      await boot.waitFor(/^heartbeat 2$/m, 30_000);
      expect(await boot.waitExit(60_000)).toBe(0);
      expect(boot.output).toContain('tskit-init: onboot 000-hello exited 0');
      expect(boot.output).not.toContain('root moved to a tmpfs');
      expect(boot.output).toContain('tskit-init: tskit.poweroff deadline reached');
      console.info(`[fixtures-boot] hello.yml (nopivot): initrd ${(image.size / 1e6).toFixed(1)} MB, HELLO-OK after ${seconds(hello.atMs)}`);
    } finally {
      await boot.stop();
    }
  });
});
