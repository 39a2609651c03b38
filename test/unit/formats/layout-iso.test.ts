// ISO layouts checked by independent tools: isoinfo (genisoimage) and xorriso read the
// volume, the El Torito catalog and every file back; fdisk reads the hybrid MBR; the boot
// info table holds what mkisofs documents.
import {createHash} from 'node:crypto';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import type {BootloaderFiles} from '../../../src/formats/bootloader.ts';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {bootIso, type BootPayload} from '../../../src/formats/layout.ts';
import {fixtureBootloader, payload, slice, tool} from '../../support/disk-layouts.ts';

let work: string;
let loader: BootloaderFiles;
let boot: BootPayload;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-iso-'));
  loader = await fixtureBootloader(inject('tskitFixtures'), join(work, 'bootloader'));
  boot = await payload(join(work, 'payload'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function write(mode: 'efi' | 'bios', name: string, mtime = 1_492_533_000) {
  const path = join(work, name);
  const written = await encodeDisk('raw', bootIso(boot, loader, {boot: mode, mtime}), path);
  return {path, sha256: written.sha256};
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('bootable ISO layouts', () => {
  it('iso-bios: ISOLINUX with its boot info table, El Torito BIOS entry, hybrid MBR; files read back', async () => {
    const {path} = await write('bios', 'bios.iso');
    const info = await tool('isoinfo', ['-d', '-i', path]);
    expect(info.out).toContain('Volume id: TSKIT');
    expect(info.out).toContain('El Torito VD version 1 found');
    expect(info.out).toMatch(/Arch 0 \(x86\)/);
    expect(info.out).toContain('Nsect 4');
    const report = await tool('xorriso', ['-indev', path, '-report_el_torito', 'plain']);
    expect(report.out).toMatch(/El Torito boot img :\s+1\s+BIOS\s+y\s+none/);
    expect(report.out).toContain('/ISOLINUX/ISOLINUX.BIN');
    for (const [name, expected] of [['/KERNEL.;1', boot.kernel.sha256], ['/INITRD.IMG;1', boot.initrd.sha256]] as const) {
      const out = join(work, name.replace(/\W/g, '_'));
      expect((await tool('sh', ['-c', `isoinfo -i "${path}" -x "${name}" > "${out}"`])).code).toBe(0);
      expect(sha(await readFile(out))).toBe(expected);
    }
    const cfg = await tool('osirrox', ['-indev', path, '-extract', '/ISOLINUX/ISOLINUX.CFG', join(work, 'isolinux.cfg')]);
    expect(cfg.code, cfg.out).toBe(0);
    expect(await readFile(join(work, 'isolinux.cfg'), 'utf8')).toContain('LINUX /KERNEL');
    // the boot info table (mkisofs -boot-info-table): PVD at 16, the file's LBA and length, checksum from byte 64
    const lba = Number(/Bootoff ([0-9a-f]+)/i.exec(info.out)?.[1] ? parseInt(/Bootoff ([0-9a-f]+)/i.exec(info.out)![1]!, 16) : -1);
    const file = await slice(path, lba * 2048, loader.isolinux!.length);
    expect(file.readUInt32LE(8)).toBe(16);
    expect(file.readUInt32LE(12)).toBe(lba);
    expect(file.readUInt32LE(16)).toBe(loader.isolinux!.length);
    let sum = 0;
    for (let i = 64; i < file.length; i += 4) sum = (sum + file.readUInt32LE(i)) >>> 0;
    expect(file.readUInt32LE(20)).toBe(sum);
    // hybrid: isohdpfx code, the boot file's LBA in 512-byte sectors at 432, one active partition over the image
    const mbr = await slice(path, 0, 512);
    expect(mbr.subarray(0, 432).equals(loader.isohdpfx!.subarray(0, 432))).toBe(true);
    expect(mbr.readUInt32LE(432)).toBe(lba * 4);
    const fdisk = await tool('sfdisk', ['--dump', path]);
    expect(fdisk.out).toMatch(/start=\s*0, size=\s*\d+, type=17, bootable/);
  });

  it('iso-efi: an El Torito UEFI entry whose FAT image holds systemd-boot, the BLS entry, kernel and initrd', async () => {
    const {path} = await write('efi', 'efi.iso');
    const report = await tool('xorriso', ['-indev', path, '-report_el_torito', 'plain']);
    const row = /El Torito boot img :\s+1\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+(\d+)\s+(\d+)/.exec(report.out);
    expect(row, report.out).not.toBeNull();
    const [sectors, lba] = [Number(row![1]), Number(row![2])];
    const image = join(work, 'efiboot.img');
    await tool('sh', ['-c', `dd if="${path}" of="${image}" bs=512 skip=${lba * 4} count=${sectors} status=none`]);
    const fsck = await tool('fsck.fat', ['-n', image]);
    expect(fsck.code, fsck.out).toBe(0);
    const listing = await tool('mdir', ['-/', '-a', '-b', '-i', image, '::']);
    for (const f of ['EFI/BOOT/BOOTX64.EFI', 'loader/entries/tskit.conf', 'kernel', 'initrd.img']) expect(listing.out).toContain(`::/${f}`);
    const kernel = await tool('sh', ['-c', `mcopy -n -o -i "${image}" ::initrd.img - | sha256sum`]);
    expect(kernel.out).toContain(boot.initrd.sha256);
    // as a disk, the MBR's 0xEF partition is the same FAT image
    expect((await tool('sfdisk', ['--dump', path])).out).toMatch(new RegExp(`start=\\s*${lba * 4}, size=\\s*${sectors}, type=ef`));
  });

  it('is reproducible, with dates from the timestamp', async () => {
    const a = await write('bios', 'a.iso');
    const b = await write('bios', 'b.iso');
    const c = await write('bios', 'c.iso', 1_700_000_000);
    expect(a.sha256).toBe(b.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    const pvd = await tool('xorriso', ['-indev', c.path, '-pvd_info']);
    expect(pvd.out).toContain('Creation Time: 2023111422132000');
    expect((await tool('isoinfo', ['-l', '-i', c.path])).out).toMatch(/Nov 14 2023 .*KERNEL\.;1/);
    const e = await write('efi', 'e1.iso');
    const f = await write('efi', 'e2.iso');
    expect(e.sha256).toBe(f.sha256);
  });
});
