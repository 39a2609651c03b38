import {Args, Flags} from '@oclif/core';
import {TskitCommand} from '../cli/command.ts';
import {interruptible} from '../cli/interrupt.ts';
import {createProgressRenderer, formatBytes} from '../cli/progress-render.ts';
import {convertDiskImage} from '../formats/convert.ts';
import {INPUT_FORMATS, type InputFormat} from '../formats/decode.ts';
import {CONTAINER_FORMATS, type ContainerFormat} from '../formats/encode.ts';

export default class Convert extends TskitCommand {
  static override summary = 'Convert a disk image to a cloud or hypervisor format';
  static override description = `Reads INPUT (raw, ISO, VHD fixed or dynamic, VHDX, VMDK sparse or streamOptimized, qcow2, or a GCE tarball; the format \
comes from the file unless --input-format says) and writes OUTPUT as --format, streaming: zero blocks are never stored, nothing \
holds the whole disk in memory. The virtual size is rounded up to what the format's target needs (whole MiB for VHD, whole \
GiB for gcp and aws). OUTPUT appears only when it is complete; a damaged input, a disk larger than the format \
holds, or an interruption leaves nothing behind.

Formats: raw (sparse file), aws (raw for EBS), vhd (fixed, for Azure), dynamic-vhd (Hyper-V), vhdx (Hyper-V Gen2), \
vmdk (streamOptimized, for vSphere and AWS import), qcow2 (v3), gcp (disk.raw in an oldgnu tar.gz, for GCE). The same \
input gives byte-identical output; identifiers and times inside come from the content and SOURCE_DATE_EPOCH.`;
  static override examples = [
    '<%= config.bin %> convert disk.img disk.vhd --format vhd',
    '<%= config.bin %> convert disk.qcow2 disk.vmdk -f vmdk',
    '<%= config.bin %> convert disk.img disk.tar.gz -f gcp --json',
  ];
  static override args = {
    input: Args.string({description: 'the disk image to read', required: true}),
    output: Args.string({description: 'the file to write', required: true}),
  };
  static override flags = {
    format: Flags.string({char: 'f', description: 'output format', options: [...CONTAINER_FORMATS], required: true}),
    'input-format': Flags.string({description: 'the input format (default: from its magic bytes, raw without any)', options: [...INPUT_FORMATS]}),
    level: Flags.integer({description: 'deflate level for vmdk and gcp (1 fastest .. 9 smallest)', default: 6, min: 1, max: 9}),
    sha256: Flags.boolean({description: "also compute the output's sha256 (on a second core; hashing a mostly empty disk's zeros costs about 0.7 s per GiB)", default: false}),
    // as the image commands' --json (cli/image-flags.ts), without loading the registry client
    json: Flags.boolean({description: 'Print events and the result as JSON lines on stdout', default: false}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Convert);
    const render = createProgressRenderer(flags.json, process.stdout);
    const started = Date.now();
    try {
      const converted = await interruptible((signal) =>
        convertDiskImage(args.input, args.output, {
          format: flags.format as ContainerFormat,
          ...(flags['input-format'] ? {inputFormat: flags['input-format'] as InputFormat} : {}),
          level: flags.level,
          sha256: flags.sha256,
          signal,
          emit: render.emit,
        }),
      );
      const seconds = (Date.now() - started) / 1000;
      render.result({...converted, seconds}, () =>
        `${converted.output}  ${converted.format}  virtual ${formatBytes(converted.virtualSize)}  file ${formatBytes(converted.size)}${converted.sha256 ? `  sha256:${converted.sha256.slice(0, 16)}…` : ''}  (${converted.inputFormat} in ${seconds.toFixed(1)} s)`,
      );
    } finally {
      render.done();
    }
  }
}
