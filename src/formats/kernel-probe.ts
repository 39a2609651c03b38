// The architecture of a Linux kernel image, for providers that boot kernel+initrd (iPXE,
// qemu's -kernel): an x86 bzImage's setup header ("HdrS", 64-bit when XLF_KERNEL_64), the
// arm64 and RISC-V Image headers' magic, or the PE machine of an EFI-stub kernel.
import type {Architecture} from './boot-probe.ts';

export interface KernelProbe {
  arch?: Architecture;
  evidence: string;
}

/** Reads the first 4 KiB of a kernel file (`head`) and says what it is. */
export function probeKernel(head: Buffer): KernelProbe {
  if (head.length >= 0x240 && head.toString('latin1', 0x202, 0x206) === 'HdrS') {
    const xloadflags = head.length > 0x237 ? head.readUInt16LE(0x236) : 0;
    return xloadflags & 1 ? {arch: 'amd64', evidence: 'an x86 bzImage with a 64-bit entry point'} : {evidence: 'an x86 bzImage without a 64-bit entry point (32-bit kernel)'};
  }
  if (head.length >= 0x40 && head.readUInt32LE(0x38) === 0x644d5241) return {arch: 'arm64', evidence: 'an arm64 Image ("ARM\\x64" at byte 56)'};
  if (head.length >= 0x40 && head.toString('latin1', 0x38, 0x3c) === 'RSC\x05') return {arch: 'riscv64', evidence: 'a RISC-V Image ("RSC\\x05" at byte 56)'};
  if (head.length >= 0x40 && head.toString('latin1', 0, 2) === 'MZ') {
    const pe = head.readUInt32LE(0x3c);
    if (pe + 6 <= head.length && head.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      const machine = head.readUInt16LE(pe + 4);
      const arch = ({0x8664: 'amd64', 0xaa64: 'arm64', 0x5064: 'riscv64'} as Record<number, Architecture>)[machine];
      if (arch) return {arch, evidence: `an EFI-stub kernel (PE machine 0x${machine.toString(16)})`};
    }
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return {evidence: 'a gzip-compressed file (decompress the kernel to learn its architecture)'};
  return {evidence: 'no kernel header this probe knows'};
}
