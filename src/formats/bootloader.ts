// The boot loader binaries a bootable layout copies from the bootloader image, where that
// image holds them, and which layouts need which. tskit never runs a boot loader's
// installer: it copies these bytes and patches the fields their documentation describes.
import {TskitError} from '../errors.ts';

export interface BootloaderFiles {
  /** systemd-boot, becomes EFI/BOOT/BOOTX64.EFI and boots a Boot Loader Specification entry. */
  systemdBoot?: Buffer;
  /** SYSLINUX's MBR boot code (boots the active partition). */
  mbr?: Buffer;
  /** SYSLINUX's GPT MBR boot code (boots the partition marked legacy-BIOS-bootable). */
  gptmbr?: Buffer;
  /** SYSLINUX's FAT boot sector and core, as its build makes them (unpatched). */
  ldlinuxBss?: Buffer;
  ldlinuxSys?: Buffer;
  /** SYSLINUX's core module, loaded by ldlinux.sys and isolinux.bin. */
  ldlinuxC32?: Buffer;
  /** ISOLINUX (hybrid-capable) and the isohybrid MBR code for it. */
  isolinux?: Buffer;
  isohdpfx?: Buffer;
}

/** Where each file sits in the bootloader image (paths without a leading /). */
export const BOOTLOADER_PATHS: Record<keyof BootloaderFiles, string> = {
  systemdBoot: 'efi/systemd-bootx64.efi',
  mbr: 'bios/mbr.bin',
  gptmbr: 'bios/gptmbr.bin',
  ldlinuxBss: 'bios/ldlinux.bss',
  ldlinuxSys: 'bios/ldlinux.sys',
  ldlinuxC32: 'bios/ldlinux.c32',
  isolinux: 'bios/isolinux.bin',
  isohdpfx: 'bios/isohdpfx.bin',
};

/** The files a layout needs, or a clear error naming what the image lacks. */
export function need<K extends keyof BootloaderFiles>(files: BootloaderFiles, keys: K[], what: string, image = 'the bootloader image'): Required<Pick<BootloaderFiles, K>> {
  const missing = keys.filter((key) => !files[key]);
  if (missing.length > 0) {
    throw new TskitError(`${what} needs ${missing.map((key) => `/${BOOTLOADER_PATHS[key]}`).join(', ')} from ${image}, which lacks ${missing.length === 1 ? 'it' : 'them'}`);
  }
  return files as Required<Pick<BootloaderFiles, K>>;
}
