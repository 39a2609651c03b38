// `tskit run qemu` booting the Debian cloud kernel with small busybox initrds under TCG:
// every verdict and exit code, the NDJSON event stream, --cmdline, --uefi, --disk,
// --console-file and disk images in each format, with no qemu and no temp dir left behind.
import {execFileSync} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {convertDisk, makeBootDisk, makeBootIso} from '../support/initrd-bootdisk.ts';
import {makeKernelInitrdImage, virtioBlkModules} from '../support/initrd-busybox.ts';
import {leftovers, tskit} from './run-qemu-support.ts';

let dir: string;
let state: string;
const images: Record<string, string> = {};
const run = (args: string[]) => tskit(args, {stateDir: state});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-test-run-qemu-'));
  state = join(dir, 'state');
  const cmdline = 'console=ttyS0 quiet';
  images.idle = await makeKernelInitrdImage(dir, 'idle', {cmdline, script: 'echo "TSKIT-READY cmdline=[$(cat /proc/cmdline)]"\nwhile true; do sleep 1; done'});
  images.poweroff = await makeKernelInitrdImage(dir, 'bye', {cmdline, script: 'echo TSKIT-BYE\npoweroff -f'});
  images.reboot = await makeKernelInitrdImage(dir, 'reboot', {cmdline, script: 'echo TSKIT-REBOOTING\nreboot -f'});
  images.panic = await makeKernelInitrdImage(dir, 'panic', {cmdline, script: 'echo TSKIT-INIT-EXITS\nexit 3'});
  images.colour = await makeKernelInitrdImage(dir, 'colour', {cmdline, script: `printf '\\033[31mERRO\\033[0m[0000] container failed\\n'\nwhile true; do sleep 1; done`});
  images.prompt = await makeKernelInitrdImage(dir, 'prompt', {cmdline, script: `printf 'guest login: '\nwhile true; do sleep 1; done`});
  images.disk = await makeKernelInitrdImage(dir, 'disk', {
    cmdline,
    modules: virtioBlkModules,
    script: 'sleep 0.5\necho "TSKIT-DISKS $(for d in /sys/block/vd*; do echo "${d##*/}=$(cat $d/size)"; done | tr "\\n" " ")"\npoweroff -f',
  });
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('tskit run qemu (kernel+initrd, TCG)', () => {
  it('exits 0 when --wait-for matches, and stops the VM', async () => {
    const r = await run([images.idle!, '--wait-for', 'TSKIT-READY', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('TSKIT-READY');
    expect(r.stderr).toMatch(/--wait-for \/TSKIT-READY\/ matched: TSKIT-READY cmdline=/);
    expect(leftovers(r)).toEqual([]);
  });

  it('appends --cmdline to the image cmdline, as the guest sees in /proc/cmdline', async () => {
    const r = await run([images.idle!, '--cmdline', 'tskit.extra=42 second', '--wait-for', 'TSKIT-READY', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('TSKIT-READY cmdline=[console=ttyS0 quiet tskit.extra=42 second]');
  });

  it('exits 1 on --fail-on, matching through colour codes', async () => {
    const r = await run([images.colour!, '--fail-on', '^ERRO\\[0000\\] container failed', '--wait-for', 'never', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/--fail-on .* matched: ERRO\[0000\] container failed/);
    expect(leftovers(r)).toEqual([]);
  });

  it('matches a prompt printed without a newline', async () => {
    const r = await run([images.prompt!, '--wait-for', 'login: $', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.endsWith('guest login: ')).toBe(true);
  });

  it('exits 124 at --timeout when the guest idles', async () => {
    const r = await run([images.idle!, '--timeout', '8s', '--wait-for', 'NEVER-PRINTED']);
    expect(r.code, r.stderr).toBe(124);
    expect(r.stdout).toContain('TSKIT-READY');
    expect(r.stderr).toMatch(/no verdict after 8s/);
    expect(r.ms).toBeLessThan(20_000);
    expect(leftovers(r)).toEqual([]);
  });

  it('exits 0 when the guest powers off, 1 if a --wait-for never matched', async () => {
    const ok = await run([images.poweroff!, '--timeout', '60s']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('TSKIT-BYE');
    expect(ok.stderr).toMatch(/guest powered off/);
    expect(leftovers(ok)).toEqual([]);
    const missed = await run([images.poweroff!, '--wait-for', 'TESTS PASSED', '--timeout', '60s']);
    expect(missed.code, missed.stderr).toBe(1);
    expect(missed.stderr).toMatch(/guest powered off before any --wait-for pattern appeared/);
  });

  it('exits 1 when the guest reboots (qemu runs with -no-reboot)', async () => {
    const r = await run([images.reboot!, '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('TSKIT-REBOOTING');
    expect(r.stderr).toMatch(/guest reset/);
    expect(leftovers(r)).toEqual([]);
  });

  it('exits 1 on a kernel panic (init exits), with the trace on the console', async () => {
    const r = await run([images.panic!, '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('TSKIT-INIT-EXITS');
    expect(r.stdout).toMatch(/Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300/);
    expect(r.stdout).toContain('---[ end Kernel panic');
    expect(r.stderr).toMatch(/Kernel panic - not syncing/);
    expect(leftovers(r)).toEqual([]);
  });

  it('streams NDJSON events with a schema version, in order', async () => {
    const r = await run([images.idle!, '--json', '--wait-for', 'TSKIT-READY', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.every((e) => e.v === 1 && typeof e.time === 'string' && typeof e.type === 'string')).toBe(true);
    const kinds = r.events.map((e) => e.type).filter((t) => t !== 'console' && t !== 'log');
    expect(kinds).toEqual(['instance.created', 'matched', 'verdict', 'instance.destroyed']);
    const created = r.events.find((e) => e.type === 'instance.created')!;
    expect(created).toMatchObject({instance: 'idle', provider: 'qemu', detail: {accel: 'tcg', firmware: 'seabios'}});
    const consoleText = r.events.filter((e) => e.type === 'console').map((e) => e.data).join('');
    expect(consoleText).toContain('TSKIT-READY');
    const matchedAt = r.events.findIndex((e) => e.type === 'matched');
    const lineAt = r.events.findIndex((e) => e.type === 'console' && String(e.data).includes('TSKIT-READY'));
    expect(lineAt).toBeLessThan(matchedAt);
    expect(r.events[matchedAt]).toMatchObject({pattern: 'TSKIT-READY', line: expect.stringContaining('TSKIT-READY cmdline=[')});
    expect(r.events.find((e) => e.type === 'verdict')).toMatchObject({verdict: 'matched', exitCode: 0});
    expect(leftovers(r)).toEqual([]);
  });

  it('writes the raw console to --console-file as well', async () => {
    const file = join(dir, 'console.log');
    const r = await run([images.poweroff!, '--console-file', file, '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(r.stdout);
  });

  it('boots a kernel+initrd under OVMF with --uefi', async () => {
    const r = await run([images.idle!, '--uefi', '--json', '--wait-for', 'TSKIT-READY', '--timeout', '90s']);
    expect(r.code, r.stdout.slice(-2000) + r.stderr).toBe(0);
    expect(r.events.find((e) => e.type === 'instance.created')).toMatchObject({detail: {firmware: expect.stringMatching(/OVMF\.fd$/)}});
    expect(leftovers(r)).toEqual([]);
  });

  it('attaches --disk: a temporary one that goes, and a named one that is created and stays', async () => {
    const named = join(dir, 'data.qcow2');
    const r = await run([images.disk!, '--disk', 'size=64M', '--disk', `file=${named},size=32M`, '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    // 512-byte sectors: 64 MiB and 32 MiB.
    expect(r.stdout).toMatch(/TSKIT-DISKS vda=131072 vdb=65536/);
    expect(existsSync(named)).toBe(true);
    expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', named], {encoding: 'utf8'}))).toMatchObject({format: 'qcow2', 'virtual-size': 32 * 2 ** 20});
    expect(leftovers(r)).toEqual([]);
  });

  it('exits 125 with a clear message when qemu cannot run the image', async () => {
    const r = await run([join(dir, 'missing'), '--timeout', '60s']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/missing: no such image/);
    const bad = await run([images.idle!, '--mem', '1T', '--timeout', '60s']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/qemu failed to start: .*(memory|ram|allocate)/i);
  });
});

describe('tskit run qemu (disk images)', () => {
  it('picks UEFI by itself for a disk with a GPT and no BIOS boot code', async () => {
    // Not bootable: OVMF finds nothing to start and drops to its shell, which says so on the
    // serial console in colour.
    const gpt = join(dir, 'gpt.img');
    const disk = Buffer.alloc(8 * 1024 * 1024);
    disk[446 + 4] = 0xee;
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk.write('EFI PART', 512, 'latin1');
    await writeFile(gpt, disk);
    const r = await run([gpt, '--json', '--networking', 'none', '--wait-for', '^UEFI Interactive Shell', '--timeout', '90s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.find((e) => e.type === 'instance.created')).toMatchObject({detail: {firmware: expect.stringMatching(/OVMF\.fd$/)}});
    expect(r.events.find((e) => e.type === 'log' && e.level === 'info')).toMatchObject({message: expect.stringMatching(/booting gpt with UEFI: the disk has no BIOS boot code/)});
    expect(leftovers(r)).toEqual([]);
  });


  it('boots a BIOS disk in every format, choosing the drive format from the file', async () => {
    const raw = join(dir, 'boot.img');
    await makeBootDisk(raw, 'TSKIT-BOOT-SECTOR-OK');
    const disks = [raw];
    for (const [ext, format, opts] of [['qcow2', 'qcow2', []], ['vmdk', 'vmdk', ['-o', 'subformat=streamOptimized']], ['vhdx', 'vhdx', []], ['vhd', 'vpc', ['-o', 'subformat=fixed,force_size=on']]] as const) {
      const path = join(dir, `boot.${ext}`);
      convertDisk(raw, path, format, [...opts]);
      disks.push(path);
    }
    for (const disk of disks) {
      const r = await run([disk, '--wait-for', 'TSKIT-BOOT-SECTOR-OK', '--timeout', '60s', '--networking', 'none']);
      expect(r.code, `${disk}: ${r.stderr}`).toBe(0);
      expect(leftovers(r)).toEqual([]);
    }
  });

  it('boots an El Torito ISO as a CD', async () => {
    const iso = join(dir, 'boot.iso');
    await makeBootIso(iso, 'TSKIT-ISO-OK');
    const r = await run([iso, '--wait-for', 'TSKIT-ISO-OK', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers(r)).toEqual([]);
  });
});
