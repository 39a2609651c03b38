// Tiny BIOS-bootable disks for the AWS run tests: a boot sector that prints numbered lines
// on COM1 with a pause between them and then powers the PC off, so the console grows while
// tskit polls it (EC2's console window slides over it) and the instance stops by itself.
// Test material.
import {writeFile} from 'node:fs/promises';

// Assembled from this (GNU as --32, ld -Ttext=0x7c00 --oformat=binary):
//         .code16
// start:  xor %ax,%ax; mov %ax,%ds; cld; mov $0x3f8,%dx; mov lines,%cx
// outer:  mov $msg,%si
// next:   lodsb; test %al,%al; jz done; out %al,%dx; jmp next
// done:   incb msg+6; cmpb $'Z'+1,msg+6; jne skip; movb $'A',msg+6; incb msg+5
// skip:   mov delay,%eax
// wait:   dec %eax; jnz wait
//         loop outer
//         mov $0x604,%dx; mov $0x2000,%ax; out %ax,%dx    # PIIX4 ACPI PM1a_CNT: SLP_EN, poweroff
// halt:   hlt; jmp halt
// lines:  .word 200            (offset 0x3f)
// delay:  .long 0x00800000     (offset 0x41)
// msg:    .ascii "LINE AA ......................\r\n\0"   (offset 0x45)
const code =
  '31c08ed8fcbaf8038b0e3f7cbe457cac84c07403eeebf8fe064b7c803e4b7c5b7509c6064b7c41fe064a7c66a1417c664875fce2d7ba0406b80020eff4ebfd' +
  'c800000080004c494e45204141202e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e0d0a00';

export interface CounterDisk {
  /** Lines printed before the poweroff (at most 676: AA..ZZ). */
  lines: number;
  /** Busy-loop iterations between lines (0x400000 is about 15 ms under TCG here). */
  delay?: number;
  /** Bytes of the disk (default 1 MiB; the rest is zeros). */
  size?: number;
}

/** The line the counter disk prints as its `n`th (0-based). */
export function counterLine(n: number): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return `LINE ${letters[Math.floor(n / 26)]}${letters[n % 26]} ......................\r\n`;
}

export async function makeCounterDisk(path: string, options: CounterDisk): Promise<void> {
  const sector = Buffer.alloc(512);
  Buffer.from(code, 'hex').copy(sector);
  sector.writeUInt16LE(options.lines, 0x3f);
  sector.writeUInt32LE(options.delay ?? 0x400000, 0x41);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  const disk = Buffer.alloc(options.size ?? 1024 * 1024);
  sector.copy(disk);
  await writeFile(path, disk);
}
