// What `tskit run qemu` can be asked for, and the parsers for the flag syntaxes it shares
// with LinuxKit (`--disk file=...,size=...,format=...`, `--publish 8080:80/tcp`).
import {TskitError} from '../../src/errors.ts';
import {parseSize, parseSizeMiB} from '../../src/run/size.ts';
import {parseHostNic, type HostNic} from './host-network.ts';
import {ARCH_NAMES, type GuestArch} from './arch.ts';

export type Accel = 'auto' | 'kvm' | 'tcg';
/** user (NAT), none, or LinuxKit's tap,NAME / bridge,NAME (host-network.ts). */
export type Networking = 'none' | 'user' | HostNic;

export interface DiskSpec {
  /** Missing: a temporary disk, removed with the instance. */
  file?: string;
  /** Bytes; used only when the file does not exist yet (default 1 GiB). */
  size?: number;
  /** qemu block driver (raw, qcow2, vpc, vhdx, vmdk); default: from the file, else qcow2. */
  format?: string;
}

export interface PortForward {
  protocol: 'tcp' | 'udp';
  /** Host address to listen on; empty means every address (as docker and LinuxKit do). */
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

export interface QemuRunOptions {
  accel?: Accel;
  /** qemu -cpu model (default: host with KVM, qemu64 with TCG). */
  cpuModel?: string;
  cpus?: number;
  memMiB?: number;
  disks?: DiskSpec[];
  /** Boot with OVMF. Default: only when the image needs it (an EFI-only disk or ISO, a `-efi` name). */
  uefi?: boolean;
  /** Appended to the kernel command line of a kernel+initrd image. */
  cmdline?: string;
  publish?: PortForward[];
  /** Default: user-mode networking with a virtio NIC (no option ROM). */
  networking?: Networking;
  /** A LinuxKit format name (kernel+initrd, raw-bios, raw-efi, qcow2-efi, iso-efi, vhd...) when the caller knows it. */
  format?: string;
  /** qemu machine type (default q35, as LinuxKit). */
  machine?: string;
  /** Defaults: $TSKIT_QEMU or qemu-system-x86_64, qemu-img. */
  qemuBinary?: string;
  qemuImgBinary?: string;
  /** Firmware for --uefi; default: the first OVMF.fd found in the usual places. */
  firmware?: string;
  /** Where the KVM probe result is cached (default: the tskit state dir). */
  stateDir?: string;
  /** Grace period for a clean stop before SIGTERM, then SIGKILL (default 3000 ms). */
  stopGraceMs?: number;
  /** The guest's architecture (default: the host's); arm64 runs qemu-system-aarch64 (arch.ts). */
  arch?: GuestArch;
  /** LinuxKit's --data/--data-file: metadata handed to the guest as a CD holding /config. */
  data?: {text: string} | {file: string};
}

/** `file=PATH,size=SIZE,format=FMT` in any order (a bare PATH is file=PATH). */
export function parseDiskSpec(text: string): DiskSpec {
  const spec: DiskSpec = {};
  for (const part of text.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const [key, value] = eq < 0 ? ['file', part] : [part.slice(0, eq), part.slice(eq + 1)];
    switch (key) {
      case 'file':
        spec.file = value;
        break;
      case 'size':
        spec.size = parseSize(value, `--disk ${text}: size`);
        break;
      case 'format':
        spec.format = value;
        break;
      default:
        throw new TskitError(`--disk ${text}: unknown key "${key}" (use file=, size=, format=)`, {exitCode: 2});
    }
  }
  return spec;
}

/** `[ADDRESS:]HOST:GUEST[/tcp|/udp]`, e.g. `8080:80`, `127.0.0.1:5353:53/udp`. */
export function parsePublish(text: string): PortForward {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|localhost):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(text.trim());
  const port = (s: string | undefined): number | undefined => {
    const n = Number(s);
    return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
  };
  const hostPort = port(m?.[2]);
  const guestPort = port(m?.[3]);
  if (!m || hostPort === undefined || guestPort === undefined) {
    throw new TskitError(`--publish ${text}: expected [ADDRESS:]HOSTPORT:GUESTPORT[/tcp|/udp] with ports 1-65535`, {exitCode: 2});
  }
  const address = m[1] === 'localhost' ? '127.0.0.1' : (m[1] ?? '');
  return {protocol: (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostAddress: address, hostPort, guestPort};
}

/** qemu's run options as words (flags, or a `tskit test` manifest's `qemu:` block) before parsing. */
export interface QemuOptionWords {
  accel?: string;
  cpus?: number;
  'cpu-model'?: string;
  /** MiB, or with a unit (512, 2G). */
  mem?: string | number;
  disk?: readonly string[];
  publish?: readonly string[];
  uefi?: boolean;
  firmware?: string;
  cmdline?: string;
  networking?: string;
  format?: string;
  data?: string;
  'data-file'?: string;
  arch?: string;
}

/** The one translation of those words into QemuRunOptions (TskitError naming the word when one is wrong). */
export function qemuRunOptions(words: QemuOptionWords, prefix = '--'): QemuRunOptions {
  const accel = words.accel ?? 'auto';
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new TskitError(`${prefix}accel: expected auto, kvm or tcg, not "${accel}"`, {exitCode: 2});
  const word = words.networking === 'default' ? 'user' : words.networking;
  const networking: Networking | undefined = word === undefined || word === 'user' || word === 'none' ? word : parseHostNic(word);
  if (word !== undefined && networking === undefined) throw new TskitError(`${prefix}networking: expected user, none, tap,NAME or bridge,NAME, not "${word}"`, {exitCode: 2});
  if (typeof networking === 'object' && (words.publish ?? []).length > 0) throw new TskitError(`${prefix}publish forwards ports of user networking; it does not apply to ${networking.mode},${networking.name}`, {exitCode: 2});
  const arch = words.arch === undefined ? undefined : ARCH_NAMES[words.arch];
  if (words.arch !== undefined && !arch) throw new TskitError(`${prefix}arch: expected amd64 (x86_64) or arm64 (aarch64), not "${words.arch}"`, {exitCode: 2});
  if (words.data !== undefined && words['data-file'] !== undefined) throw new TskitError(`${prefix}data and ${prefix}data-file cannot both be given`, {exitCode: 2});
  if (words.cpus !== undefined && (!Number.isInteger(words.cpus) || words.cpus < 1)) throw new TskitError(`${prefix}cpus: expected a whole number of at least 1, not ${words.cpus}`, {exitCode: 2});
  return {
    accel: accel as Accel,
    cpus: words.cpus ?? 1,
    ...(words['cpu-model'] ? {cpuModel: words['cpu-model']} : {}),
    memMiB: parseSizeMiB(String(words.mem ?? '1024'), `${prefix}mem`),
    disks: (words.disk ?? []).map(parseDiskSpec),
    publish: (words.publish ?? []).map(parsePublish),
    ...(words.uefi === undefined ? {} : {uefi: words.uefi}),
    ...(words.firmware ? {firmware: words.firmware} : {}),
    ...(words.cmdline ? {cmdline: words.cmdline} : {}),
    ...(networking ? {networking} : {}),
    ...(words.format ? {format: words.format} : {}),
    ...(arch ? {arch} : {}),
    ...(words.data !== undefined ? {data: {text: words.data}} : words['data-file'] !== undefined ? {data: {file: words['data-file']}} : {}),
  };
}

/**
 * What cannot be shared by several VMs of one cluster: a host port forwarded by each (only the
 * first could bind it) and a named disk file attached to each (they would corrupt it).
 */
export function clusterConflict(options: QemuRunOptions, count: number): string | undefined {
  if (count <= 1) return undefined;
  if (typeof options.networking === 'object' && options.networking.mode === 'tap') return `--networking tap,${options.networking.name} gives one tap device to one VM, not ${count}: use bridge,NAME for a cluster`;
  if ((options.publish ?? []).length > 0) return `--publish forwards one host port, and ${count} VMs cannot all have it: publish from a single VM (--count 1), or reach the VMs over the cluster network`;
  const named = (options.disks ?? []).find((d) => d.file);
  if (named) return `--disk file=${named.file} would be attached to all ${count} VMs at once; give cluster VMs temporary disks (--disk size=...)`;
  return undefined;
}
