// The boot-mode and architecture probe, on disks made by the usual tools (sgdisk, mkfs.vfat
// with FAT12/16/32, mtools) and on the BIOS test disk.
import {mkdtemp, open, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {probeBoot} from '../../../providers/aws/boot-probe.ts';
import {makeEfiDisk} from '../../aws-peer/efi-disk.ts';
import {makeBootDisk} from '../../support/initrd-bootdisk.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-probe-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function probeFile(path: string) {
  const file = await open(path, 'r');
  try {
    const {size} = await file.stat();
    return await probeBoot(async (offset, length) => {
      const buffer = Buffer.alloc(length);
      if (offset < size) await file.read(buffer, 0, Math.min(length, size - offset), offset);
      return buffer;
    });
  } finally {
    await file.close();
  }
}

describe('probeBoot', () => {
  it('MBR boot code: legacy-bios on x86_64', async () => {
    const disk = join(work, 'bios.raw');
    await makeBootDisk(disk, 'x');
    expect(await probeFile(disk)).toMatchObject({bootMode: 'legacy-bios', arch: 'x86_64'});
  });

  for (const fat of [12, 16, 32] as const) {
    it(`GPT with an ESP (FAT${fat}) holding BOOTX64.EFI: uefi on x86_64`, async () => {
      const disk = join(work, `efi${fat}.raw`);
      makeEfiDisk(disk, 'x86_64', work, {fat});
      const probe = await probeFile(disk);
      expect(probe).toMatchObject({bootMode: 'uefi', arch: 'x86_64'});
      expect(probe.evidence.join(', ')).toContain('EFI/BOOT/BOOTX64.EFI is an x86-64 PE');
    });
  }

  it('BOOTAA64.EFI: arm64, read from the PE machine type', async () => {
    const disk = join(work, 'arm.raw');
    makeEfiDisk(disk, 'arm64', work, {fat: 32});
    expect(await probeFile(disk)).toMatchObject({bootMode: 'uefi', arch: 'arm64'});
  });

  it('BIOS boot code and an ESP: uefi-preferred', async () => {
    const disk = join(work, 'hybrid.raw');
    makeEfiDisk(disk, 'x86_64', work, {biosCode: true});
    expect(await probeFile(disk)).toMatchObject({bootMode: 'uefi-preferred', arch: 'x86_64'});
  });

  it('a blank disk: nothing known', async () => {
    const disk = join(work, 'blank.raw');
    await (await import('node:fs/promises')).writeFile(disk, Buffer.alloc(1024 * 1024));
    const probe = await probeFile(disk);
    expect(probe.bootMode).toBeUndefined();
    expect(probe.arch).toBeUndefined();
  });
});
