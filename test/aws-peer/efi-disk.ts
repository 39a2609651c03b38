// UEFI disks for the AWS tests, made with the usual tools (sgdisk, mkfs.vfat, mtools) so the
// boot-mode and architecture probe is checked against disks it did not make itself: a GPT
// with an EFI system partition holding EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI (a PE header
// with that machine type). Test material.
import {execFileSync} from 'node:child_process';
import {closeSync, openSync, writeFileSync, writeSync} from 'node:fs';
import {join} from 'node:path';

const MACHINE = {x86_64: 0x8664, arm64: 0xaa64} as const;
const LOADER = {x86_64: 'BOOTX64.EFI', arm64: 'BOOTAA64.EFI'} as const;

// A real x86-64 UEFI application that prints a marker on COM1 and halts, so a UEFI AMI boots to
// something under OVMF. Made from (GNU as --64; ld -pie -e _start; objcopy --target
// efi-app-x86_64 -j .text -j .reloc, the .reloc section a dummy block so EDK II relocates it):
//   _start: lea msg(%rip),%rsi; mov $0x3f8,%dx
//   1: lodsb; test %al,%al; jz 2f; out %al,%dx; jmp 1b
//   2: hlt; jmp 2b
//   msg: .ascii "TSKIT-UEFI-MARK from an EFI application\r\n\0"
//   .section .reloc,"a"; .long 0; .long 10; .word 0
// Stored as its non-zero runs [offset, hex].
export const EFI_MARKER = 'TSKIT-UEFI-MARK from an EFI application';
const EFI_APP_SIZE = 1576;
const EFI_APP: [number, string][] = [
  [0, '4d5a90000300000004000000ffff0000b8000000000000004000000000000000'],
  [60, '800000000e1fba0e00b409cd21b8014ccd21546869732070726f6772616d2063616e6e6f742062652072756e20696e20444f53206d6f64652e0d0d0a24000000000000005045000064860200000000000006000002000000f00006020b020228000200000002000000000000001000000010000000000000000000000010000000020000000000000000000000000000000000000030000000020000b40a00000a000000000000000000000000000000'],
  [260, '10000000000000000000000000000000'],
  [305, '2000000a000000000000000000000000'],
  [392, '2e7465787400000040000000001000000002000000020000000000000000000000000000200000602e72656c6f6300000a00000000200000000200000004000000000000000000000000000040000042'],
  [512, '488d350f00000066baf803ac84c07403eeebf8f4ebfd54534b49542d554546492d4d41524b2066726f6d20616e20454649206170706c69636174696f6e0d0a00'],
  [1028, '0a000000000000000000000000000000'],
  [1536, '6d73670000000000160000000100000003005f737461727400000000000001000000020004000000'],
];

export function efiMarkerApplication(): Buffer {
  const app = Buffer.alloc(EFI_APP_SIZE);
  for (const [offset, hex] of EFI_APP) Buffer.from(hex, 'hex').copy(app, offset);
  return app;
}

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
  /** The loader: a bare PE header (default) or the application that prints EFI_MARKER (x86_64). */
  loader?: 'stub' | 'marker';
}

/** Writes a 48 MiB GPT disk whose ESP (at 1 MiB, 40 MiB long) holds the loader for `arch`. */
export function makeEfiDisk(path: string, arch: 'x86_64' | 'arm64', work: string, options: EfiDiskOptions = {}): void {
  const fat = join(work, `esp-${arch}-${process.pid}.img`);
  const stub = join(work, `loader-${arch}-${process.pid}.efi`);
  writeFileSync(stub, options.loader === 'marker' ? efiMarkerApplication() : peStub(MACHINE[arch]));
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
