// `run qemu --arch`: which qemu emulates the guest and what that machine looks like. amd64 is
// qemu-system-x86_64 on q35 (SeaBIOS, OVMF for UEFI); arm64 is qemu-system-aarch64 on `virt`
// with a Cortex-A57 under TCG (as LinuxKit's run qemu) and AAVMF, Debian's edk2 for arm64, as
// its only firmware. A guest of another architecture than the host's always runs under TCG.
export type GuestArch = 'amd64' | 'arm64';

export const ARCH_NAMES: Record<string, GuestArch> = {amd64: 'amd64', x86_64: 'amd64', arm64: 'arm64', aarch64: 'arm64'};

export function hostArch(): GuestArch | undefined {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

export interface ArchProfile {
  qemu: string;
  machine: string;
  /** -cpu under TCG (KVM uses host). */
  tcgCpu: string;
  /** The serial console's device name in the guest. */
  console: string;
  /** UEFI firmware files, in order of preference (given with -bios). */
  firmware: readonly string[];
  /** virt has no IDE: CDs and the kernel+squashfs root go on virtio-scsi there. */
  ide: boolean;
}

export const ARCH_PROFILES: Record<GuestArch, ArchProfile> = {
  amd64: {qemu: 'qemu-system-x86_64', machine: 'q35', tcgCpu: 'qemu64', console: 'ttyS0', firmware: [], ide: true},
  arm64: {
    qemu: 'qemu-system-aarch64',
    machine: 'virt',
    tcgCpu: 'cortex-a57',
    console: 'ttyAMA0',
    firmware: ['/usr/share/qemu-efi-aarch64/QEMU_EFI.fd', '/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/edk2/aarch64/QEMU_EFI.fd'],
    ide: false,
  },
};

export const aavmfAdvice = 'install AAVMF (Debian/Ubuntu: apt-get install qemu-efi-aarch64) or pass its QEMU_EFI.fd with --firmware';
