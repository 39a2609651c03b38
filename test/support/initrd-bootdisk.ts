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
