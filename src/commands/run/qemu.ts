// `tskit run qemu PATH`: flags in, events out. The run loop is src/run/session.ts, the VM is
// providers/qemu; this file only translates flags and renders.
import {Args, Flags} from '@oclif/core';
import {parseDiskSpec, parsePublish, qemuProvider, type QemuRunOptions} from '../../../providers/qemu/index.ts';
import {parseDuration} from '../../run/duration.ts';
import {compileMarker} from '../../run/markers.ts';
import {createConsoleRenderer, type ConsoleRenderer} from '../../cli/console-render.ts';
import {TskitCommand} from '../../cli/command.ts';
import {runSession} from '../../run/session.ts';
import {trapInterrupts} from '../../run/signals.ts';
import {parseSizeMiB} from '../../run/size.ts';

export default class RunQemu extends TskitCommand {
  static override summary = 'Boot an image in a local qemu and stream its serial console';

  static override description = `PATH is a kernel+initrd prefix (out/hello for out/hello-kernel, out/hello-initrd.img and out/hello-cmdline), a directory holding one, or a disk image (.img/.raw, .qcow2, .vhd, .vhdx, .vmdk, .iso as a CD).

The console goes to stdout as it comes. The run ends when a --wait-for pattern matches (exit 0), a --fail-on pattern or a kernel panic shows (1), the guest powers off (0; 1 if --wait-for was given and never matched), resets (1), --timeout passes (124), qemu fails (125), or on Ctrl-C/SIGTERM (130/143; a second Ctrl-C kills qemu at once). The VM and every temp file are gone when tskit exits.`;

  static override examples = [
    '<%= config.bin %> run qemu out/hello',
    '<%= config.bin %> run qemu out/hello --wait-for "^TESTS PASSED" --fail-on "FAIL" --timeout 5m',
    '<%= config.bin %> run qemu out/web-efi.qcow2 --uefi --publish 8080:80 --disk size=2G',
  ];

  static override args = {
    path: Args.string({description: 'kernel+initrd prefix, directory, or disk image', required: true}),
  };

  static override flags = {
    'wait-for': Flags.string({description: 'exit 0 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
    'fail-on': Flags.string({description: 'exit 1 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
    timeout: Flags.string({description: 'give up after this long and exit 124 (90s, 5m, 1h30m, or seconds)'}),
    accel: Flags.string({description: 'accelerator: auto probes KVM (cached per host boot) and falls back to TCG', options: ['auto', 'kvm', 'tcg'], default: 'auto'}),
    cpus: Flags.integer({description: 'virtual CPUs', min: 1, default: 1}),
    'cpu-model': Flags.string({description: 'qemu -cpu model (default: host with KVM, qemu64 with TCG, the fastest to emulate; max for guests built for newer CPUs)'}),
    mem: Flags.string({description: 'memory, MiB or with a unit (512, 2G)', default: '1024'}),
    disk: Flags.string({description: 'extra disk: file=PATH,size=SIZE,format=FMT (missing file: created and kept; no file: temporary)', multiple: true, multipleNonGreedy: true}),
    uefi: Flags.boolean({description: 'boot with OVMF UEFI firmware (default: only when the image needs it)', allowNo: true}),
    firmware: Flags.string({description: 'UEFI firmware file (default: OVMF.fd from the usual places)'}),
    cmdline: Flags.string({description: "text appended to a kernel+initrd image's kernel command line"}),
    publish: Flags.string({char: 'p', description: 'forward a host port to the guest: [ADDRESS:]HOST:GUEST[/tcp|/udp]', multiple: true, multipleNonGreedy: true}),
    networking: Flags.string({description: 'guest network: user (NAT, default) or none', options: ['user', 'none']}),
    format: Flags.string({description: 'the image format when the file does not say (raw-efi, iso-efi, qcow2-bios, ...)'}),
    'console-file': Flags.string({description: 'also write the raw console to this file'}),
    json: Flags.boolean({description: 'print NDJSON events (console, matched, verdict, ...) on stdout instead of the console'}),
    verbose: Flags.boolean({char: 'v', description: 'also report the qemu command line, accelerator choice and lifecycle on stderr'}),
  };

  async run(): Promise<void> {
    // Before anything slow, so a Ctrl-C during start-up still tears down what was made.
    const interrupts = trapInterrupts();
    let renderer: ConsoleRenderer | undefined;
    try {
      const {args, flags} = await this.parse(RunQemu);
      // `tskit run qemu x | head`: when the reader goes, stop the run as a SIGPIPE would.
      let stdoutGone = false;
      process.stdout.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' || stdoutGone) return;
        stdoutGone = true;
        interrupts.raise('SIGPIPE');
      });
      const stdout = {write: (chunk: string | Uint8Array) => stdoutGone || process.stdout.write(chunk)};
      renderer = createConsoleRenderer({json: flags.json, stdout, stderr: process.stderr, verbose: flags.verbose, consoleFile: flags['console-file']});
      const runOptions: QemuRunOptions = {
        accel: flags.accel as QemuRunOptions['accel'],
        cpus: flags.cpus,
        ...(flags['cpu-model'] ? {cpuModel: flags['cpu-model']} : {}),
        memMiB: parseSizeMiB(flags.mem, '--mem'),
        disks: (flags.disk ?? []).map(parseDiskSpec),
        publish: (flags.publish ?? []).map(parsePublish),
        ...(flags.uefi === undefined ? {} : {uefi: flags.uefi}),
        ...(flags.firmware ? {firmware: flags.firmware} : {}),
        ...(flags.cmdline ? {cmdline: flags.cmdline} : {}),
        ...(flags.networking ? {networking: flags.networking as 'user' | 'none'} : {}),
        ...(flags.format ? {format: flags.format} : {}),
      };
      const result = await runSession({
        provider: qemuProvider,
        image: {provider: 'qemu', id: args.path},
        runOptions,
        waitFor: (flags['wait-for'] ?? []).map((s) => compileMarker(s, '--wait-for')),
        failOn: (flags['fail-on'] ?? []).map((s) => compileMarker(s, '--fail-on')),
        ...(flags.timeout ? {timeoutMs: parseDuration(flags.timeout, '--timeout')} : {}),
        emit: renderer.emit,
        onConsole: renderer.onConsole,
        signal: interrupts.stop,
        hurry: interrupts.hurry,
      });
      // Without instances there was no verdict event to say why (interrupted or timed out while starting).
      if (result.outcomes.length === 0 && !flags.json) process.stderr.write(`tskit: ${result.reason}\n`);
      process.exitCode = result.exitCode;
    } finally {
      renderer?.close();
      interrupts.dispose();
    }
  }
}
