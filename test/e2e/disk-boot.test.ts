// The bootable formats end to end: `tskit build` makes each from templates/hello.yml with
// the fixture bootloader image, the outputs are reproducible, and each boots to the hello
// marker in QEMU: UEFI (OVMF) for the -efi formats, BIOS (SeaBIOS) for the -bios ones, both
// for the hybrid aws disk, and iso-bios also as a disk (isohybrid).
import {spawn} from 'node:child_process';
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {CONTAINER_FORMATS} from '../../src/formats/encode.ts';
import {ensureBuilt, jsonLines, ROOT, tskit} from '../support/cli.ts';
import {slice, tool} from '../support/disk-layouts.ts';

const mirror = inject('tskitMirror');
const HELLO = join(ROOT, 'templates/hello.yml');
let work: string;
let cache: string;
let out: string;
const qcow2 = (CONTAINER_FORMATS as readonly string[]).includes('qcow2');
const FORMATS = ['raw-efi', 'raw-bios', 'iso-efi', 'iso-bios', 'aws', ...(qcow2 ? ['qcow2-efi', 'qcow2-bios'] : [])];

const build = (args: string[], env: Record<string, string> = {}) =>
  tskit(['build', ...args.slice(0, -1), '--mirror', mirror, ...args.slice(-1)], {env: {TSKIT_CACHE: cache, ...env}, timeout: 300_000});

async function buildAll(dir: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  const built = await build([...FORMATS.flatMap((f) => ['-f', f]), '--json', '--name', 'hello', '--dir', dir, HELLO], env);
  expect(built.code, built.stderr).toBe(0);
  const shas: Record<string, string> = {};
  for (const event of jsonLines(built.stdout)) if (event.type === 'artifact.written') shas[String(event.path).replace(`${dir}/`, '')] = String(event.sha256);
  return shas;
}

async function boot(args: string[], timeout = '120s') {
  const started = Date.now();
  const run = await tskit(['run', 'qemu', '--wait-for', 'HELLO-OK', '--timeout', timeout, ...args], {timeout: 200_000});
  const seconds = (Date.now() - started) / 1000;
  expect(run.code, `${run.stderr}\n${run.stdout.slice(-3000)}`).toBe(0);
  expect(run.stdout).toMatch(/^HELLO-OK greetings-from-a-files-entry\r?$/m);
  console.info(`[disk-boot] ${args.join(' ')}: HELLO-OK after ${seconds.toFixed(1)} s`);
  return run;
}

/** Boots a file as a plain disk with SeaBIOS, whatever it looks like (tskit run qemu treats an ISO as a CD). */
function bootAsBiosDisk(path: string, timeoutMs = 120_000): Promise<{ok: boolean; console: string; seconds: number}> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const qemu = spawn('qemu-system-x86_64', [
      '-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64', '-m', '512', '-nodefaults', '-display', 'none', '-no-reboot', '-nic', 'none',
      '-serial', 'stdio', '-drive', `if=none,id=d,format=raw,snapshot=on,file=${path}`, '-device', 'virtio-blk-pci,drive=d,bootindex=0',
    ], {stdio: ['ignore', 'pipe', 'pipe']});
    let console = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      qemu.kill('SIGKILL');
      resolve({ok, console, seconds: (Date.now() - started) / 1000});
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    qemu.stdout.on('data', (chunk: Buffer) => {
      console += chunk.toString();
      if (/HELLO-OK greetings-from-a-files-entry/.test(console)) finish(true);
    });
    qemu.on('error', reject);
    qemu.on('exit', () => finish(/HELLO-OK/.test(console)));
  });
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-disk-boot-'));
  cache = join(work, 'cache');
  out = join(work, 'out');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('bootable formats from tskit build', () => {
  let shas: Record<string, string>;

  it('builds every bootable format under LinuxKit\'s names, byte for byte the same twice; SOURCE_DATE_EPOCH changes them', async () => {
    shas = await buildAll(out);
    const names = ['hello-efi.img', 'hello-bios.img', 'hello-efi.iso', 'hello.iso', 'hello.raw', ...(qcow2 ? ['hello-efi.qcow2', 'hello.qcow2'] : [])];
    expect(Object.keys(shas).sort()).toEqual(names.sort());
    expect((await readdir(out)).sort()).toEqual(names.sort()); // no scratch files left behind
    const again = await buildAll(join(work, 'again'));
    expect(again).toEqual(shas);
    const later = await buildAll(join(work, 'later'), {SOURCE_DATE_EPOCH: '1700000000'});
    for (const name of names) expect(later[name], name).not.toBe(shas[name]);
  });

  it('raw-efi boots with UEFI (picked by tskit run qemu: GPT without BIOS code)', async () => {
    const run = await boot([join(out, 'hello-efi.img')]);
    expect(run.stderr).toMatch(/UEFI|OVMF|uefi/);
  });

  it('iso-efi boots with UEFI from the El Torito EFI image', async () => {
    await boot([join(out, 'hello-efi.iso')]);
  });

  it('raw-bios boots with SeaBIOS through SYSLINUX', async () => {
    await boot([join(out, 'hello-bios.img')]);
  });

  it('iso-bios boots with SeaBIOS from the CD (ISOLINUX) and as a disk (isohybrid)', async () => {
    await boot([join(out, 'hello.iso')]);
    const disk = await bootAsBiosDisk(join(out, 'hello.iso'));
    expect(disk.ok, disk.console.slice(-2000)).toBe(true);
    console.info(`[disk-boot] hello.iso as a BIOS disk: HELLO-OK after ${disk.seconds.toFixed(1)} s`);
  });

  it('aws (hybrid by default) boots both ways: BIOS and UEFI', async () => {
    await boot([join(out, 'hello.raw')]);
    await boot(['--uefi', join(out, 'hello.raw')]);
  });

  it.runIf(qcow2)('qcow2-efi boots with UEFI and qcow2-bios with SeaBIOS', async () => {
    await boot([join(out, 'hello-efi.qcow2')]);
    await boot([join(out, 'hello.qcow2')]);
  });
});

describe('bootable format content', () => {
  it('the disk holds exactly the kernel and initrd kernel+initrd writes (early microcode first), and the command line', async () => {
    const dir = join(work, 'lifecycle');
    const built = await build(['-f', 'kernel+initrd', '-f', 'raw-bios', '--name', 'lc', '--dir', dir, join(ROOT, 'test/fixtures/yml/lifecycle.yml')]);
    expect(built.code, built.stderr).toBe(0);
    const esp = join(dir, 'esp.img');
    await tool('sh', ['-c', `dd if="${join(dir, 'lc-bios.img')}" of="${esp}" bs=1M skip=1 status=none`]);
    for (const [inside, outside] of [['kernel', 'lc-kernel'], ['initrd.img', 'lc-initrd.img']]) {
      const same = await tool('sh', ['-c', `mcopy -n -o -i "${esp}" "::${inside}" - | cmp - "${join(dir, outside!)}" && echo same`]);
      expect(same.out.trim(), `${inside}: ${same.out}`).toBe('same');
    }
    const cfg = await tool('mtype', ['-i', esp, '::syslinux.cfg']);
    expect(cfg.out).toContain(`APPEND ${(await readFile(join(dir, 'lc-cmdline'), 'utf8')).trim()}`);
    // lifecycle's kernel image has early microcode: the initrd starts with its uncompressed cpio
    expect((await slice(join(dir, 'lc-initrd.img'), 0, 6)).toString('latin1')).toBe('070701');
  });
});

describe('big payloads', () => {
  it('iso-efi with an initrd beyond El Torito\'s 16-bit sector count (32 MiB) boots: the entry says "the rest of the medium"', async () => {
    const dir = join(work, 'big');
    const {randomBytes} = await import('node:crypto');
    const {mkdir} = await import('node:fs/promises');
    await mkdir(dir, {recursive: true});
    await writeFile(join(dir, 'noise'), randomBytes(40 * 1024 * 1024)); // incompressible: the initrd grows by as much
    const yml = join(dir, 'big.yml');
    await writeFile(yml, `${await readFile(HELLO, 'utf8')}  - path: var/noise\n    source: ${join(dir, 'noise')}\n`);
    const built = await build(['-f', 'iso-efi', '--name', 'big', '--dir', dir, yml]);
    expect(built.code, built.stderr).toBe(0);
    const report = await tool('xorriso', ['-indev', join(dir, 'big-efi.iso'), '-report_el_torito', 'plain']);
    expect(report.out).toMatch(/El Torito boot img :\s+1\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+0\s/);
    await boot([join(dir, 'big-efi.iso')]);
  });
});

describe('bootable format options', () => {
  it('--boot that a format does not allow, and --size too small or off the target multiple, fail before anything is written', async () => {
    const dir = join(work, 'bad');
    const wrong = await build(['-f', 'raw-efi', '--boot', 'bios', '--dir', dir, HELLO]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('--boot bios does not apply to raw-efi');
    const small = await build(['-f', 'aws', '--size', '4M', '--dir', dir, HELLO]);
    expect(small.code).not.toBe(0);
    expect(small.stderr).toMatch(/too small: this image needs at least \d+ bytes/);
    const azure = await build(['-f', 'vhd', '--size', '100.5M', '--dir', dir, HELLO]);
    expect(azure.code).not.toBe(0);
    expect(azure.stderr).toContain('vhd needs a whole number of 1 MiB');
    const odd = await build(['-f', 'aws', '--size', '100.5M', '--dir', dir, HELLO]);
    expect(odd.code).toBe(0); // raw takes any whole number of sectors
    await expect(readdir(dir)).resolves.toEqual(['hello.raw']);
  });

  it('--boot efi makes the aws disk UEFI-only; --size and --data-size shape it', async () => {
    const dir = join(work, 'sized');
    const built = await build(['-f', 'aws', '--boot', 'efi', '--size', '256M', '--data-size', '64M', '--dir', dir, HELLO]);
    expect(built.code, built.stderr).toBe(0);
    const {statSync} = await import('node:fs');
    expect(statSync(join(dir, 'hello.raw')).size).toBe(256 * 1024 * 1024);
    await boot([join(dir, 'hello.raw')]); // no BIOS code: tskit run qemu picks UEFI by itself
  });

  it('the bootloader image comes from --bootloader-image, else the YAML extension key, and is validated', async () => {
    const yml = join(work, 'with-bootloader.yml');
    await writeFile(yml, `${await readFile(HELLO, 'utf8')}bootloader:\n  image: localhost:5000/tskit/no-such-bootloader:1\n`);
    const fromYaml = await build(['-f', 'raw-bios', '--dir', join(work, 'y'), yml]);
    expect(fromYaml.code).not.toBe(0);
    expect(fromYaml.stderr).toContain('no-such-bootloader');
    const fromFlag = await build(['-f', 'raw-bios', '--bootloader-image', 'localhost:5000/tskit/bootloader:1', '--dir', join(work, 'y'), yml]);
    expect(fromFlag.code, fromFlag.stderr).toBe(0);
    const valid = await tskit(['validate', yml]);
    expect(valid.code, valid.stderr + valid.stdout).toBe(0);
    const typo = join(work, 'typo.yml');
    await writeFile(typo, 'bootloader:\n  imag: x\n');
    const invalid = await tskit(['validate', typo]);
    expect(invalid.code).toBe(1);
    expect(invalid.stdout + invalid.stderr).toMatch(/unknown field "imag" in bootloader \(did you mean "image"\?\)/);
  });
});
