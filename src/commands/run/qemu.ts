// `tskit run qemu PATH`: flags in, events out. The run loop is src/run/session.ts, the VM is
// providers/qemu; this file only translates flags and renders.
import {Args, Flags} from '@oclif/core';
import {clusterConflict, qemuProvider, qemuRunOptions, type QemuRunOptions} from '../../../providers/qemu/index.ts';
import {TskitError} from '../../errors.ts';
import {TskitCommand} from '../../cli/command.ts';
import {runFlags, runProvider} from '../../cli/run-provider.ts';
import {trapInterrupts} from '../../run/signals.ts';

export default class RunQemu extends TskitCommand {
  static override summary = 'Boot an image in a local qemu and stream its serial console';

  static override description = `PATH is a kernel+initrd prefix (out/hello for out/hello-kernel, out/hello-initrd.img and out/hello-cmdline), a directory holding one, or a disk image (.img/.raw, .qcow2, .vhd, .vhdx, .vmdk, .iso as a CD).

The console goes to stdout as it comes. The run ends when a --wait-for pattern matches (exit 0), a --fail-on pattern or a kernel panic shows (1), the guest powers off (0; 1 if --wait-for was given and never matched), resets (1), --timeout passes (124), qemu fails (125), or on Ctrl-C/SIGTERM (130/143; a second Ctrl-C kills qemu at once). The VM and every temp file are gone when tskit exits.

With --count N, N VMs boot together as a cluster: each console is prefixed with its name (IMAGE-0, IMAGE-1, ...), each VM gets its own verdict, and the run exits 0 only when all of them (or --min-pass K) passed. The VMs share a network (a second NIC; VM i is 10.77.0.(10+i)/24) and each is told its index and its peers' addresses (kernel command line tskit.*, fw_cfg opt/tskit/metadata.json, and a NoCloud seed). Everything a run creates is journalled first; \`tskit gc\` removes what a killed tskit left.`;

  static override examples = [
    '<%= config.bin %> run qemu out/hello',
    '<%= config.bin %> run qemu out/hello --wait-for "^TESTS PASSED" --fail-on "FAIL" --timeout 5m',
    '<%= config.bin %> run qemu out/web-efi.qcow2 --uefi --publish 8080:80 --disk size=2G',
    '<%= config.bin %> run qemu out/hello --count 3 --wait-for "suite PASSED" --fail-on "FAIL|Kernel panic" --timeout 5m --junit out/junit.xml',
  ];

  static override args = {
    path: Args.string({description: 'kernel+initrd prefix, directory, or disk image', required: true}),
  };

  static override flags = {
    ...runFlags,
    accel: Flags.string({description: 'accelerator: auto probes KVM (cached per host boot) and falls back to TCG', options: ['auto', 'kvm', 'tcg'], default: 'auto'}),
    cpus: Flags.integer({description: 'virtual CPUs', min: 1, default: 1}),
    'cpu-model': Flags.string({description: 'qemu -cpu model (default: host with KVM, qemu64 with TCG, the fastest to emulate; max for guests built for newer CPUs)'}),
    mem: Flags.string({description: 'memory, MiB or with a unit (512, 2G)', default: '1024'}),
    disk: Flags.string({description: 'extra disk: file=PATH,size=SIZE,format=FMT (missing file: created and kept; no file: temporary)', multiple: true, multipleNonGreedy: true}),
    uefi: Flags.boolean({description: 'boot with OVMF UEFI firmware (default: only when the image needs it)', allowNo: true}),
    firmware: Flags.string({description: 'UEFI firmware file (default: OVMF.fd from the usual places)'}),
    cmdline: Flags.string({description: "text appended to a kernel+initrd image's kernel command line"}),
    publish: Flags.string({char: 'p', description: 'forward a host port to the guest: [ADDRESS:]HOST:GUEST[/tcp|/udp]', multiple: true, multipleNonGreedy: true}),
    networking: Flags.string({description: 'guest network: user (NAT, default), none, tap,NAME (an existing tap device) or bridge,NAME (an existing bridge, through qemu-bridge-helper), as LinuxKit'}),
    format: Flags.string({description: 'the image format when the file does not say (raw-efi, iso-efi, qcow2-bios, kernel+squashfs, ...)'}),
    arch: Flags.string({description: 'guest architecture: amd64 (x86_64) or arm64 (aarch64: qemu-system-aarch64, virt, AAVMF for disks, TCG on an x86 host); default the host\'s', options: ['amd64', 'x86_64', 'arm64', 'aarch64']}),
    data: Flags.string({description: 'metadata for the guest, as LinuxKit: a CD holding /config (LinuxKit\'s metadata ISO)', exclusive: ['data-file']}),
    'data-file': Flags.string({description: 'as --data, from a file'}),
    verbose: Flags.boolean({char: 'v', description: 'also report the qemu command line, accelerator choice and lifecycle on stderr'}),
  };

  async run(): Promise<void> {
    // Before anything slow, so a Ctrl-C during start-up still tears down what was made.
    const interrupts = trapInterrupts();
    try {
      const {args, flags} = await this.parse(RunQemu);
      await runProvider({
        command: 'run qemu',
        provider: qemuProvider,
        image: {provider: 'qemu', id: args.path},
        flags,
        interrupts,
        runOptions: (cluster) => {
          const options: QemuRunOptions = qemuRunOptions({
            accel: flags.accel,
            cpus: flags.cpus,
            'cpu-model': flags['cpu-model'],
            mem: flags.mem,
            disk: flags.disk ?? [],
            publish: flags.publish ?? [],
            uefi: flags.uefi,
            firmware: flags.firmware,
            cmdline: flags.cmdline,
            networking: flags.networking,
            format: flags.format,
            data: flags.data,
            arch: flags.arch,
            'data-file': flags['data-file'],
          });
          const conflict = clusterConflict(options, cluster.count);
          if (conflict) throw new TskitError(conflict, {exitCode: 2});
          return options;
        },
      });
    } finally {
      interrupts.dispose();
    }
  }
}
