// The boot-mode and architecture probe, through the one disk entry point, on disks made by
// the usual tools (sgdisk, mkfs.vfat with FAT12/16/32, mtools), on the BIOS test disk, and
// on the same disks wrapped by qemu-img in every container format tskit reads.
import {execFileSync} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openDisk} from '../../../src/formats/decode.ts';
import {makeEfiDisk, peStub} from '../../aws-peer/efi-disk.ts';
import {makeBootDisk} from '../../support/initrd-bootdisk.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-probe-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function probeFile(path: string) {
  const disk = await openDisk(path);
  try {
    return await disk.probe();
  } finally {
    await disk.close();
  }
}

describe('probeBoot', () => {
  it('MBR boot code: bios on amd64', async () => {
    const disk = join(work, 'bios.raw');
    await makeBootDisk(disk, 'x');
    expect(await probeFile(disk)).toMatchObject({boot: 'bios', arch: 'amd64', biosBootCode: true});
  });

  for (const fat of [12, 16, 32] as const) {
    it(`GPT with an ESP (FAT${fat}) holding BOOTX64.EFI: uefi on amd64`, async () => {
      const disk = join(work, `efi${fat}.raw`);
      makeEfiDisk(disk, 'x86_64', work, {fat});
      const probe = await probeFile(disk);
      expect(probe).toMatchObject({boot: 'uefi', arch: 'amd64', layout: 'gpt', biosBootCode: false});
      expect(probe.evidence.join(', ')).toContain('EFI/BOOT/BOOTX64.EFI is an x86-64 PE');
    });
  }

  it('BOOTAA64.EFI: arm64, read from the PE machine type', async () => {
    const disk = join(work, 'arm.raw');
    makeEfiDisk(disk, 'arm64', work, {fat: 32});
    expect(await probeFile(disk)).toMatchObject({boot: 'uefi', arch: 'arm64'});
  });

  it('BIOS boot code and an ESP: hybrid', async () => {
    const disk = join(work, 'hybrid.raw');
    makeEfiDisk(disk, 'x86_64', work, {biosCode: true});
    expect(await probeFile(disk)).toMatchObject({boot: 'hybrid', arch: 'amd64'});
  });

  it('a blank disk: nothing known', async () => {
    const disk = join(work, 'blank.raw');
    await (await import('node:fs/promises')).writeFile(disk, Buffer.alloc(1024 * 1024));
    const probe = await probeFile(disk);
    expect(probe.boot).toBeUndefined();
    expect(probe.arch).toBeUndefined();
    expect(probe.layout).toBe('none');
  });

  // the same hybrid disk, wrapped by qemu-img: the probe reads through each container's tables
  for (const [format, options] of [['qcow2', []], ['vpc', ['-o', 'subformat=dynamic']], ['vpc', ['-o', 'subformat=fixed,force_size=on']], ['vhdx', []], ['vmdk', ['-o', 'subformat=streamOptimized']], ['vmdk', ['-o', 'subformat=monolithicSparse']]] as const) {
    it(`through ${format} ${options.join(' ')}: hybrid on amd64`, async () => {
      const raw = join(work, 'wrapped.raw');
      makeEfiDisk(raw, 'x86_64', work, {biosCode: true});
      const wrapped = join(work, `wrapped-${format}-${options.length}.img`);
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...options, raw, wrapped]);
      expect(await probeFile(wrapped)).toMatchObject({boot: 'hybrid', arch: 'amd64', layout: 'gpt'});
    });
  }

  it('through a GCE tarball (tar --format=oldgnu -S, gzip): the sparse member is read', async () => {
    const dir = join(work, 'gcp');
    execFileSync('mkdir', ['-p', dir]);
    makeEfiDisk(join(dir, 'disk.raw'), 'arm64', work, {fat: 16});
    execFileSync('tar', ['--format=oldgnu', '-Sczf', join(work, 'image.tar.gz'), '-C', dir, 'disk.raw']);
    const disk = await openDisk(join(work, 'image.tar.gz'));
    try {
      expect(disk.format).toBe('gcp');
      expect(disk.variant).toBe('sparse');
      expect(await disk.probe()).toMatchObject({boot: 'uefi', arch: 'arm64'});
    } finally {
      await disk.close();
    }
  });

  for (const bios of [true, false]) {
    it(`an ISO (xorriso) with ${bios ? 'BIOS and ' : ''}EFI El Torito entries: ${bios ? 'hybrid' : 'uefi'}, the architecture from the EFI image's loader`, async () => {
      const root = join(work, `iso-root-${bios}`);
      execFileSync('mkdir', ['-p', root]);
      const efiboot = join(root, 'efiboot.img');
      execFileSync('mkfs.vfat', ['-C', efiboot, '2880'], {stdio: 'ignore'});
      const loader = join(work, 'BOOTAA64.EFI');
      await (await import('node:fs/promises')).writeFile(loader, peStub(0xaa64));
      execFileSync('mmd', ['-i', efiboot, '::EFI', '::EFI/BOOT']);
      execFileSync('mcopy', ['-i', efiboot, loader, '::EFI/BOOT/BOOTAA64.EFI']);
      await (await import('node:fs/promises')).writeFile(join(root, 'boot.bin'), Buffer.alloc(2048, 0x90));
      const iso = join(work, `probe-${bios}.iso`);
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', iso, ...(bios ? ['-b', 'boot.bin', '-no-emul-boot', '-eltorito-alt-boot'] : []), '-e', 'efiboot.img', '-no-emul-boot', root], {stdio: 'ignore'});
      const disk = await openDisk(iso);
      try {
        expect(disk.format).toBe('iso');
        expect(await disk.probe()).toMatchObject({boot: bios ? 'hybrid' : 'uefi', arch: 'arm64', layout: 'iso', elTorito: {bios, efi: true}});
      } finally {
        await disk.close();
      }
    });
  }
});
