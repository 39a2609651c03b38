// Bootable disk layouts checked by independent tools: sfdisk and sgdisk on the partition
// tables, fsck.fat and mtools on the boot partition, and SYSLINUX's own installer as the
// reference for how tskit patches ldlinux.sys and the boot sector.
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import type {BootloaderFiles} from '../../../src/formats/bootloader.ts';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {bootDisk, type BootMode, type BootPayload} from '../../../src/formats/layout.ts';
import {installSyslinux, ldlinuxFile} from '../../../src/formats/syslinux.ts';
import {fixtureBootloader, payload, slice, tool} from '../../support/disk-layouts.ts';

const MiB = 1024 * 1024;
let work: string;
let loader: BootloaderFiles;
let boot: BootPayload;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-disk-'));
  loader = await fixtureBootloader(inject('tskitFixtures'), join(work, 'bootloader'));
  boot = await payload(join(work, 'payload'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function write(mode: BootMode, name: string, extra: {size?: number; dataSize?: number; mtime?: number; multiple?: number} = {}) {
  const image = bootDisk(boot, loader, {boot: mode, mtime: extra.mtime ?? 1_492_533_000, ...extra});
  const path = join(work, name);
  const written = await encodeDisk('raw', image, path);
  return {path, image, sha256: written.sha256};
}

async function espCheck(path: string, offset: number, expected: string[]) {
  // fsck.fat has no offset option: check a copy of the partition
  const esp = `${path}.esp`;
  await tool('sh', ['-c', `dd if="${path}" of="${esp}" bs=1M skip=${offset / MiB} count=64 status=none`]);
  const check = await tool('fsck.fat', ['-n', '-v', esp]);
  expect(check.code, check.out).toBe(0);
  expect(check.out).not.toMatch(/wrong|differ|invalid|corrupt/i);
  const listing = await tool('mdir', ['-/', '-a', '-b', '-i', esp, '::']);
  for (const file of expected) expect(listing.out.toLowerCase(), listing.out).toContain(`::/${file}`.toLowerCase());
  const kernel = await tool('sh', ['-c', `mcopy -n -o -i "${esp}" ::kernel "${esp}.kernel" && cmp "${esp}.kernel" "${boot.kernel.path}" && mcopy -n -o -i "${esp}" ::initrd.img "${esp}.initrd" && cmp "${esp}.initrd" "${boot.initrd.path}" && echo same`], {MTOOLS_SKIP_CHECK: '1'});
  expect(kernel.out.trim(), kernel.out).toBe('same');
  return esp;
}

describe('bootable disk layouts', () => {
  it('efi: a GPT with one ESP that sgdisk and sfdisk verify, holding systemd-boot and a BLS entry', async () => {
    const {path, image} = await write('efi', 'efi.img');
    expect(image.size % MiB).toBe(0);
    const verify = await tool('sgdisk', ['-v', path]);
    expect(verify.out).toContain('No problems found');
    const sfdisk = await tool('sfdisk', ['--verify', path]);
    expect(sfdisk.code, sfdisk.out).toBe(0);
    const info = await tool('sgdisk', ['-i', '1', path]);
    expect(info.out).toContain('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    expect(info.out).toContain('First sector: 2048');
    // no BIOS boot code: only UEFI boots it (qemu's auto-detection relies on this too)
    expect((await slice(path, 0, 440)).every((b) => b === 0)).toBe(true);
    const esp = await espCheck(path, MiB, ['EFI/BOOT/BOOTX64.EFI', 'loader/loader.conf', 'loader/entries/tskit.conf', 'kernel', 'initrd.img']);
    const entry = await tool('mtype', ['-i', esp, '::loader/entries/tskit.conf']);
    expect(entry.out).toBe('title tskit\nlinux /kernel\ninitrd /initrd.img\noptions console=ttyS0 panic=1\n');
    const efi = await tool('sh', ['-c', `mcopy -n -o -i "${esp}" ::EFI/BOOT/BOOTX64.EFI - | sha256sum`]);
    expect(efi.out).toContain((await import('node:crypto')).createHash('sha256').update(loader.systemdBoot!).digest('hex'));
  });

  it('bios: an MBR with SYSLINUX boot code and one active FAT32 partition with SYSLINUX installed', async () => {
    const {path} = await write('bios', 'bios.img');
    const list = await tool('sfdisk', ['--dump', path]);
    expect(list.out).toMatch(/start=\s*2048, size=\s*\d+, type=c, bootable/);
    expect((await slice(path, 0, 440)).equals(loader.mbr!.subarray(0, 440))).toBe(true);
    const esp = await espCheck(path, MiB, ['ldlinux.sys', 'ldlinux.c32', 'syslinux.cfg', 'kernel', 'initrd.img']);
    const cfg = await tool('mtype', ['-i', esp, '::syslinux.cfg']);
    expect(cfg.out).toContain('LINUX /kernel');
    expect(cfg.out).toContain('APPEND console=ttyS0 panic=1');
    const attrs = await tool('mattrib', ['-i', esp, '::ldlinux.sys']);
    // mattrib prints the set attributes before the name: read-only, hidden, system (as the installer sets them)
    expect(attrs.out.split('::')[0]).toMatch(/^(?=.*R)(?=.*H)(?=.*S)/);
  });

  it('hybrid: GPT whose protective MBR boots SYSLINUX from the ESP marked legacy-BIOS-bootable', async () => {
    const {path} = await write('hybrid', 'hybrid.img');
    expect((await tool('sgdisk', ['-v', path])).out).toContain('No problems found');
    expect((await tool('sgdisk', ['-i', '1', path])).out).toContain('Attribute flags: 0000000000000004');
    expect((await slice(path, 0, 440)).equals(loader.gptmbr!.subarray(0, 440))).toBe(true);
    await espCheck(path, MiB, ['EFI/BOOT/BOOTX64.EFI', 'loader/entries/tskit.conf', 'ldlinux.sys', 'syslinux.cfg', 'kernel', 'initrd.img']);
  });

  it('installs SYSLINUX exactly as its own installer does', async () => {
    // The reference: syslinux --install on a FAT16 volume made by mkfs.fat.
    const ref = join(work, 'ref.img');
    expect((await tool('mkfs.fat', ['-F', '16', '-C', ref, '16384'])).code).toBe(0);
    const installer = join(inject('tskitFixtures').dir, '..', '..', 'debs', 'syslinux', 'usr', 'bin', 'syslinux');
    const installed = await tool(installer, ['--install', ref]);
    expect(installed.code, installed.out).toBe(0);
    const refBoot = await slice(ref, 0, 512);
    const refSys = join(work, 'ref-ldlinux.sys');
    expect((await tool('mcopy', ['-n', '-o', '-i', ref, '::ldlinux.sys', refSys])).code).toBe(0);
    const firstSector = refBoot.readUInt32LE(0x11a);
    // Ours, for the same place, on a boot sector with the same BPB.
    const ours = Buffer.from(refBoot);
    ours.fill(0, 0x5a, 0x1fe);
    const file = installSyslinux({bss: loader.ldlinuxBss!, coreLength: loader.ldlinuxSys!.length, file: ldlinuxFile(loader.ldlinuxSys!), firstSector, bootSector: ours});
    expect(ours.equals(refBoot)).toBe(true);
    const reference = await readFile(refSys);
    expect(file.subarray(0, loader.ldlinuxSys!.length).equals(reference.subarray(0, loader.ldlinuxSys!.length))).toBe(true);
    // the ADV sectors: both empty, as the installer writes them
    expect(file.subarray(file.length - 1024).equals(reference.subarray(reference.length - 1024))).toBe(true);
  });

  it('is reproducible: same inputs, same bytes; the timestamp and mode change them', async () => {
    const a = await write('hybrid', 'r1.img');
    const b = await write('hybrid', 'r2.img');
    const c = await write('hybrid', 'r3.img', {mtime: 1_600_000_000});
    expect(a.sha256).toBe(b.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    const guid = async (p: string) => /Disk identifier \(GUID\): (\S+)/.exec((await tool('sgdisk', ['-p', p])).out)?.[1];
    expect(await guid(a.path)).toBe(await guid(b.path));
    expect(await guid(c.path)).not.toBe(await guid(a.path));
  });

  it('--size: a bigger disk keeps the layout valid (backup GPT at its end); too small, or off the target multiple, is refused', async () => {
    const {path} = await write('efi', 'big.img', {size: 1024 * MiB, multiple: MiB});
    expect((await tool('sgdisk', ['-v', path])).out).toContain('No problems found');
    expect(() => bootDisk(boot, loader, {boot: 'efi', mtime: 0, size: 8 * MiB})).toThrow(/too small: this image needs at least/);
    expect(() => bootDisk(boot, loader, {boot: 'efi', mtime: 0, size: 100 * MiB + 512, multiple: MiB})).toThrow(/multiple of 1048576/);
    const gcp = bootDisk(boot, loader, {boot: 'efi', mtime: 0, multiple: 1024 * MiB});
    expect(gcp.size).toBe(1024 * MiB);
  });

  it('a data partition follows the boot partition (GPT and MBR)', async () => {
    const gpt = await write('efi', 'data-gpt.img', {dataSize: 64 * MiB});
    const gptList = await tool('sgdisk', ['-p', gpt.path]);
    expect(gptList.out).toMatch(/\n\s+2\s+\d+\s+\d+\s+64\.0 MiB\s+8300\s+data/);
    expect((await tool('sgdisk', ['-v', gpt.path])).out).toContain('No problems found');
    const mbr = await write('bios', 'data-mbr.img', {dataSize: 64 * MiB});
    expect((await tool('sfdisk', ['--dump', mbr.path])).out).toMatch(/size=\s*131072, type=83/);
  });

  it('refuses a bootloader image that lacks what the layout needs, naming the file', () => {
    expect(() => bootDisk(boot, {...loader, systemdBoot: undefined}, {boot: 'efi', mtime: 0})).toThrow('/efi/systemd-bootx64.efi');
    expect(() => bootDisk(boot, {...loader, gptmbr: undefined}, {boot: 'hybrid', mtime: 0})).toThrow('/bios/gptmbr.bin');
  });
});
