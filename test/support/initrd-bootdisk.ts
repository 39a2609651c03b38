// A one-sector BIOS-bootable disk for tests of disk-image booting: the boot sector writes a
// message to COM1 and halts. qemu-img converts the raw disk to every other format, so each
// format's drive options are proven by a real boot in about a second. Test material.
import {execFileSync} from 'node:child_process';
import {writeFile} from 'node:fs/promises';

// xor ax,ax; mov ds,ax; cld; mov dx,0x3f8; mov si,msg; next: lodsb; test al,al; jz done;
// out dx,al; jmp next; done: hlt; jmp done; msg: (assembled at 0x7c00; msg at 0x7c16)
const code = '31c08ed8fcbaf803be167cac84c07403eeebf8f4ebfd';

export function messageBootSector(message: string): Buffer {
  const sector = Buffer.alloc(512);
  const used = Buffer.from(code, 'hex').copy(sector);
  const text = Buffer.from(`${message}\r\n\0`, 'latin1');
  if (used + text.length > 446) throw new Error('message too long for a boot sector');
  text.copy(sector, used);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** Writes a 1 MiB raw disk that prints `message` on the serial console at boot. */
export async function makeBootDisk(path: string, message: string): Promise<void> {
  const disk = Buffer.alloc(1024 * 1024);
  messageBootSector(message).copy(disk);
  await writeFile(path, disk);
}

/** The same disk in another format (qcow2, vmdk, vhdx, vpc), through qemu-img. */
export function convertDisk(raw: string, path: string, format: string, options: string[] = []): void {
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...options, raw, path]);
}

/**
 * A minimal El Torito CD (ISO 9660 volume descriptors, a boot catalog, a no-emulation boot
 * image) whose boot image is the message boot sector. platform 0xef makes it EFI-only (the
 * entry is then not really bootable; tests use that only to check firmware selection).
 */
export async function makeBootIso(path: string, message: string, platform: 0 | 0xef = 0): Promise<void> {
  const sector = 2048;
  const iso = Buffer.alloc(24 * sector);
  const descriptor = (lba: number, type: number): number => {
    const at = lba * sector;
    iso[at] = type;
    iso.write('CD001', at + 1, 'latin1');
    iso[at + 6] = 1;
    return at;
  };
  const pvd = descriptor(16, 1);
  iso.write('TSKIT_TEST'.padEnd(32), pvd + 40, 'latin1');
  iso.writeUInt32LE(24, pvd + 80);
  iso.writeUInt32BE(24, pvd + 84);
  const boot = descriptor(17, 0);
  iso.write('EL TORITO SPECIFICATION', boot + 7, 'latin1');
  iso.writeUInt32LE(19, boot + 0x47);
  descriptor(18, 255);
  const catalog = 19 * sector;
  iso[catalog] = 1;
  iso[catalog + 1] = platform;
  iso[catalog + 30] = 0x55;
  iso[catalog + 31] = 0xaa;
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + iso.readUInt16LE(catalog + i)) & 0xffff;
  iso.writeUInt16LE((0x10000 - sum) & 0xffff, catalog + 28);
  iso[catalog + 32] = 0x88; // bootable, no emulation, load segment 0 (0x7c0)
  iso.writeUInt16LE(1, catalog + 32 + 6); // one 512-byte sector
  iso.writeUInt32LE(20, catalog + 32 + 8);
  messageBootSector(message).copy(iso, 20 * sector);
  await writeFile(path, iso);
}
