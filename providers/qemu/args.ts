// The qemu command line for one instance, as a pure function of what was decided (image,
// accelerator, firmware, disks, network) so it can be read and tested on its own.
import type {BootImage} from './image.ts';
import type {PreparedDisk} from './disks.ts';
import type {Networking, PortForward} from './options.ts';

export interface QemuPlan {
  /** Also the temp dir's name and qemu's -name, so `destroy` and `list` can find both. */
  id: string;
  image: BootImage;
  accel: 'kvm' | 'tcg';
  /** The -cpu model. */
  cpu: string;
  cpus: number;
  memMiB: number;
  machine: string;
  /** false on arm64's virt (no IDE): CDs and the kernel+squashfs root go on virtio-scsi. */
  ide?: boolean;
  /** OVMF.fd when booting UEFI. */
  firmware?: string;
  /** Appended to the image's kernel command line. */
  extraCmdline?: string;
  disks: readonly PreparedDisk[];
  networking: Networking;
  /** The NIC's MAC on a tap or bridge (distinct per guest). */
  hostNicMac?: string;
  publish: readonly PortForward[];
  /** The user-mode NIC's MAC (qemu's default when absent). */
  natMac?: string;
  /** A second NIC on the cluster's shared segment (providers/qemu/cluster-switch.ts). */
  clusterNic?: {socket: string; mac: string};
  /** Files handed to the guest through fw_cfg (names start with opt/). */
  fwCfg?: readonly {name: string; file: string}[];
  /** A read-only NoCloud `cidata` volume, attached as a virtio disk (found by its label). */
  seedImage?: string;
  /** LinuxKit's metadata ISO (--data): a CD on virtio-scsi, /dev/sr0 in the guest. */
  dataIso?: string;
}

/** qemu's option syntax: a comma inside a value is written twice. */
export function optionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** The kernel command line a kernel+initrd image boots with. */
export function kernelCmdline(image: BootImage, extra?: string): string {
  if (image.kind !== 'kernel+initrd') return '';
  return [image.cmdline, extra?.trim()].filter(Boolean).join(' ');
}

/**
 * The CPU model when none is asked for: the host's under KVM; under TCG QEMU's own qemu64,
 * which boots the hello image ~0.8 s faster here than `max` (and ~0.9 s than Nehalem): every
 * feature TCG emulates is work. Guests built for x86-64-v2 or later need `--cpu-model max`.
 */
export function defaultCpuModel(accel: 'kvm' | 'tcg'): string {
  return accel === 'kvm' ? 'host' : 'qemu64';
}

export function qemuArgs(plan: QemuPlan): string[] {
  const args = [
    '-name', `${plan.id},process=${plan.id}`,
    '-machine', plan.machine,
    '-accel', plan.accel,
    '-cpu', plan.cpu,
    '-smp', String(plan.cpus),
    '-m', String(plan.memMiB),
    // No default devices (VGA, parallel port, default NIC with its iPXE ROM, floppy, monitor):
    // each is boot time, and the serial console is the only screen.
    '-nodefaults', '-no-user-config', '-display', 'none',
    // A reboot, including the one after `panic=N`, ends qemu: the run is over then.
    '-no-reboot',
    // The console is qemu's stdout (live, nothing lost before we connect); a terminal's Ctrl-C
    // is tskit's to handle, not qemu's (signal=off).
    '-chardev', 'stdio,id=console,signal=off', '-serial', 'chardev:console',
    // QMP on the socket tskit hands qemu as fd 3: shutdown reasons, and `quit`.
    '-chardev', 'socket,id=qmp,fd=3', '-mon', 'chardev=qmp,mode=control',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
  ];
  if (plan.firmware) args.push('-bios', plan.firmware);
  const image = plan.image;
  if (image.kind === 'kernel+initrd') {
    args.push('-kernel', image.kernel, ...(image.initrd ? ['-initrd', image.initrd] : []), '-append', kernelCmdline(image, plan.extraCmdline));
    // the root filesystem image as LinuxKit attaches it (the first IDE/AHCI disk: /dev/sda);
    // snapshot=on: the guest may write, the file (shared by a cluster's VMs) never changes
    if (image.rootDisk && plan.ide !== false) args.push('-drive', `file=${optionValue(image.rootDisk)},format=raw,index=0,media=disk,snapshot=on`);
    // no IDE (arm64 virt): the first SCSI disk is /dev/sda too
    else if (image.rootDisk) args.push('-device', 'virtio-scsi-pci,id=rootscsi', '-drive', `if=none,id=root,format=raw,snapshot=on,file=${optionValue(image.rootDisk)}`, '-device', 'scsi-hd,drive=root,bus=rootscsi.0');
    if (image.rootCdrom) {
      args.push('-drive', `if=none,id=root,media=cdrom,readonly=on,format=raw,file=${optionValue(image.rootCdrom)}`);
      if (plan.ide === false) args.push('-device', 'virtio-scsi-pci,id=rootscsi', '-device', 'scsi-cd,drive=root,bus=rootscsi.0');
      else args.push('-device', 'ide-cd,drive=root');
    }
  } else if (image.media === 'cdrom') {
    args.push('-drive', `if=none,id=boot,media=cdrom,readonly=on,format=raw,file=${optionValue(image.path)}`);
    if (plan.ide === false) args.push('-device', 'virtio-scsi-pci,id=bootscsi', '-device', 'scsi-cd,drive=boot,bus=bootscsi.0,bootindex=0');
    else args.push('-device', 'ide-cd,drive=boot,bootindex=0');
  } else {
    args.push('-drive', `if=none,id=boot,format=${image.format},file=${optionValue(image.path)}`, '-device', 'virtio-blk-pci,drive=boot,bootindex=0');
  }
  for (const [i, disk] of plan.disks.entries()) {
    args.push('-drive', `if=none,id=disk${i},format=${disk.format},file=${optionValue(disk.path)}`, '-device', `virtio-blk-pci,drive=disk${i}`);
  }
  if (plan.seedImage) {
    args.push('-drive', `if=none,id=seed,format=raw,readonly=on,file=${optionValue(plan.seedImage)}`, '-device', 'virtio-blk-pci,drive=seed');
  }
  if (plan.dataIso) {
    args.push('-device', 'virtio-scsi-pci,id=datascsi', '-drive', `if=none,id=data,media=cdrom,readonly=on,format=raw,file=${optionValue(plan.dataIso)}`, '-device', 'scsi-cd,drive=data,bus=datascsi.0');
  }
  if (plan.networking === 'user') {
    const forwards = plan.publish.map((p) => `,hostfwd=${p.protocol}:${p.hostAddress}:${p.hostPort}-:${p.guestPort}`).join('');
    // romfile= (empty): no iPXE option ROM; tskit never network-boots.
    args.push('-netdev', `user,id=net0${forwards}`, '-device', `virtio-net-pci,netdev=net0,romfile=${plan.natMac ? `,mac=${plan.natMac}` : ''}`);
  }
  if (typeof plan.networking === 'object') {
    const {mode, name} = plan.networking;
    const netdev = mode === 'tap' ? `tap,id=net0,ifname=${name},script=no,downscript=no` : `bridge,id=net0,br=${name}`;
    args.push('-netdev', netdev, '-device', `virtio-net-pci,netdev=net0,romfile=${plan.hostNicMac ? `,mac=${plan.hostNicMac}` : ''}`);
  }
  // After the NAT NIC, so it is the second interface (eth1) when both are there.
  if (plan.clusterNic) {
    args.push('-netdev', `stream,id=cluster0,server=off,addr.type=unix,addr.path=${optionValue(plan.clusterNic.socket)}`, '-device', `virtio-net-pci,netdev=cluster0,romfile=,mac=${plan.clusterNic.mac}`);
  }
  for (const entry of plan.fwCfg ?? []) args.push('-fw_cfg', `name=${entry.name},file=${optionValue(entry.file)}`);
  return args;
}
