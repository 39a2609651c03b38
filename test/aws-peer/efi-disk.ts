// UEFI disks for the AWS tests, made with the usual tools (sgdisk, mkfs.vfat, mtools) so the
// boot-mode and architecture probe is checked against disks it did not make itself: a GPT
// with an EFI system partition holding EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI (a PE header
// with that machine type). Test material.
import {execFileSync} from 'node:child_process';
import {closeSync, openSync, writeFileSync, writeSync} from 'node:fs';
import {join} from 'node:path';

const MACHINE = {x86_64: 0x8664, arm64: 0xaa64} as const;
const LOADER = {x86_64: 'BOOTX64.EFI', arm64: 'BOOTAA64.EFI'} as const;

/** A minimal PE image: enough header for its machine type to be read. */
export function peStub(machine: number): Buffer {
  const pe = Buffer.alloc(1024);
  pe.write('MZ', 0, 'latin1');
  pe.writeUInt32LE(0x80, 0x3c);
  pe.write('PE\0\0', 0x80, 'latin1');
  pe.writeUInt16LE(machine, 0x84);
  return pe;
}

export interface EfiDiskOptions {
  /** FAT type of the ESP (default 16). */
  fat?: 12 | 16 | 32;
  /** Also put BIOS boot code in the protective MBR (a hybrid disk). */
  biosCode?: boolean;
}

/** Writes a 48 MiB GPT disk whose ESP (at 1 MiB, 40 MiB long) holds the loader for `arch`. */
export function makeEfiDisk(path: string, arch: 'x86_64' | 'arm64', work: string, options: EfiDiskOptions = {}): void {
  const fat = join(work, `esp-${arch}-${process.pid}.img`);
  const stub = join(work, `loader-${arch}-${process.pid}.efi`);
  writeFileSync(stub, peStub(MACHINE[arch]));
  execFileSync('truncate', ['-s', '48M', path]);
  execFileSync('sgdisk', ['-o', '-n', '1:2048:+40M', '-t', '1:EF00', path], {stdio: 'ignore'});
  execFileSync('rm', ['-f', fat]);
  const kind = options.fat ?? 16;
  execFileSync('mkfs.vfat', ['-C', '-F', String(kind), ...(kind === 32 ? ['-s', '1'] : []), fat, String((kind === 12 ? 8 : 40) * 1024)], {stdio: 'ignore'});
  execFileSync('mmd', ['-i', fat, '::/EFI', '::/EFI/BOOT']);
  execFileSync('mcopy', ['-i', fat, stub, `::/EFI/BOOT/${LOADER[arch]}`]);
  execFileSync('dd', [`if=${fat}`, `of=${path}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
  if (options.biosCode) {
    // Some boot code in the MBR's code area (the protective MBR keeps its partition entry).
    const code = Buffer.from('fa31c08ed8f4ebfd', 'hex');
    const fd = openSync(path, 'r+');
    writeSync(fd, code, 0, code.length, 0);
    closeSync(fd);
  }
  execFileSync('rm', ['-f', fat, stub]);
}
