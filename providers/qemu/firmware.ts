// Finds the UEFI firmware (OVMF) for --uefi. A single OVMF.fd given with -bios boots faster
// than the split CODE/VARS pflash pair and needs no writable copy of the variable store.
import {access, constants} from 'node:fs/promises';

export const ovmfCandidates = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/edk2/ovmf/OVMF.fd', '/usr/share/edk2-ovmf/x64/OVMF.fd'];

export async function findOvmf(candidates: readonly string[] = ovmfCandidates): Promise<string | undefined> {
  for (const path of candidates) {
    if (await access(path, constants.R_OK).then(() => true, () => false)) return path;
  }
  return undefined;
}

export const ovmfAdvice = 'install OVMF (Debian/Ubuntu: apt-get install ovmf; Fedora: dnf install edk2-ovmf) or pass its OVMF.fd path';
