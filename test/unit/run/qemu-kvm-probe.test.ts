// The KVM probe against real qemu. On a host without vmx/svm (this kind of machine: /dev/kvm
// is there but backed by PVM, which starts guests and then crawls) the probe must say no
// within its deadline; the probe guest itself must reach its end under TCG.
import {execFileSync} from 'node:child_process';
import {accessSync, constants, readFileSync} from 'node:fs';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {kvmProbeSector, probeKvm} from '../../../providers/qemu/kvm-probe.ts';

const hardwareVirt = /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const devKvm = (() => {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

let state: string;
// The probe makes its temp dir under $TMPDIR: a private one here, so probes that other test
// files run at the same time neither show up in nor hide from this file's checks.
let privateTmp: string;
const savedTmp = process.env.TMPDIR;
beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'tskit-test-kvm-state-'));
  privateTmp = await mkdtemp(join(tmpdir(), 'tskit-test-kvm-tmp-'));
  process.env.TMPDIR = privateTmp;
});
afterAll(async () => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  await rm(state, {recursive: true, force: true});
  await rm(privateTmp, {recursive: true, force: true});
});

function qemuPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', `${privateTmp}/tskit-kvm-probe-`], {encoding: 'utf8'}).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function probeDirs(): Promise<string[]> {
  return (await readdir(privateTmp)).filter((d) => d.startsWith('tskit-kvm-probe-'));
}

describe('KVM probe', () => {
  it('is a boot sector whose guest reaches long mode and finishes its work (under TCG)', async () => {
    const sector = kvmProbeSector();
    expect(sector.length).toBe(512);
    expect(sector.readUInt16LE(510)).toBe(0xaa55);
    const result = await probeKvm({qemu: 'qemu-system-x86_64', accel: 'tcg', cpu: 'max', deadlineMs: 20_000});
    expect(result).toMatchObject({usable: true, cached: false});
  });

  it.runIf(!hardwareVirt || !devKvm)('says no here, within its deadline, and caches the answer for this boot', async () => {
    const before = await probeDirs();
    const started = Date.now();
    const first = await probeKvm({qemu: 'qemu-system-x86_64', stateDir: state});
    expect(first.usable).toBe(false);
    expect(Date.now() - started).toBeLessThan(3500);
    const cache = JSON.parse(await readFile(join(state, 'kvm-probe.json'), 'utf8')) as {bootId: string; usable: boolean};
    expect(cache).toMatchObject({bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), usable: false});
    const again = await probeKvm({qemu: 'qemu-system-x86_64', stateDir: state});
    expect(again).toMatchObject({usable: false, cached: true, reason: first.reason});
    expect(await probeDirs()).toEqual(before);
    expect(qemuPids()).toEqual([]);
  });

  it.runIf(devKvm && !hardwareVirt)('rejects a KVM that starts guests but runs them in software, at the deadline', async () => {
    // With a CPU model this KVM accepts, the guest runs, just far too slowly.
    const started = Date.now();
    const result = await probeKvm({qemu: 'qemu-system-x86_64', cpu: 'qemu64', deadlineMs: 2000});
    expect(result.usable).toBe(false);
    expect(result.reason).toMatch(/too slow/);
    expect(Date.now() - started).toBeLessThan(3500);
    expect(qemuPids()).toEqual([]);
  });

  it('stops at once when aborted, leaving no qemu and no files', async () => {
    const before = await probeDirs();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const result = await probeKvm({qemu: 'qemu-system-x86_64', accel: 'tcg', cpu: 'max', deadlineMs: 20_000, signal: controller.signal});
    // Under TCG the probe needs about a second: the abort comes first.
    expect(result.usable).toBe(false);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await probeDirs()).toEqual(before);
    expect(qemuPids()).toEqual([]);
  });
});
