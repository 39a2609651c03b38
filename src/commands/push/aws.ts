// `tskit push aws IMAGE_FILE`: flags in, an AMI id out. The work is providers/aws.
import {Args, Flags} from '@oclif/core';
import {AwsProvider, diskFileFormat, type AwsPushOptions} from '../../../providers/aws/index.ts';
import {newRunId} from '../../run/run-id.ts';
import {RunJournal} from '../../run/run-journal.ts';
import {stateDir} from '../../run/state-dir.ts';
import {TskitCommand} from '../../cli/command.ts';
import {formatBytes, createProgressRenderer} from '../../cli/progress-render.ts';
import {TskitError} from '../../errors.ts';
import {Interruption, trapInterrupts} from '../../run/signals.ts';

export default class PushAws extends TskitCommand {
  static override summary = 'Upload a disk image to AWS and register it as an AMI';

  static override description = `IMAGE_FILE is a raw disk (tskit build -f aws, raw-bios or raw-efi) or a VMDK. The AMI id is printed on stdout.

--method ebs (the default) writes the disk straight into an EBS snapshot with the EBS direct APIs: only blocks that are not all zeros are sent (a VMDK is read through its grain tables), no S3 bucket or vmimport role is needed. --method import uploads the file to --bucket and converts it with VM Import (ImportSnapshot). Either way the AMI is tagged with the file's sha256, and pushing the same file again reuses that AMI unless --force. An interrupted push continues where it stopped when run again.

Boot mode and architecture are read from the image (MBR boot code: legacy-bios; an EFI system partition: uefi; both: uefi-preferred; the EFI loader's machine type: x86_64 or arm64); --boot and --arch override them.

Credentials, region and endpoint come from the AWS SDK's standard settings: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance roles, AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS.`;

  static override examples = [
    '<%= config.bin %> push aws out/hello.raw',
    '<%= config.bin %> push aws --name web-1.2 --tag team=infra out/web-efi.img',
    '<%= config.bin %> push aws --method import --bucket my-images out/hello.vmdk',
    'AWS_PROFILE=prod AWS_REGION=eu-west-1 <%= config.bin %> push aws --json out/hello.raw',
  ];

  static override args = {
    file: Args.string({description: 'raw disk or VMDK', required: true}),
  };

  static override flags = {
    method: Flags.string({description: 'ebs: EBS direct APIs (default); import: S3 upload + VM Import (needs --bucket and the vmimport role)', options: ['ebs', 'import']}),
    bucket: Flags.string({description: 'S3 bucket to stage the disk in (--method import)'}),
    name: Flags.string({description: 'AMI name (default: the file name and 12 hex digits of its sha256)'}),
    arch: Flags.string({description: 'architecture (default: read from the image)', options: ['x86_64', 'arm64']}),
    boot: Flags.string({description: 'boot mode (default: read from the image)', options: ['uefi', 'legacy-bios', 'uefi-preferred']}),
    ena: Flags.boolean({description: 'mark the AMI as ENA-capable (every current instance type needs it)', allowNo: true, default: true}),
    tag: Flags.string({description: 'extra tag KEY=VALUE on the AMI and its snapshot (repeatable)', multiple: true, multipleNonGreedy: true}),
    force: Flags.boolean({description: 'upload and register again even if an AMI of this content exists (replaces an AMI of the same name tskit made)'}),
    'role-name': Flags.string({description: 'VM Import service role for --method import (default: vmimport)'}),
    'keep-object': Flags.boolean({description: 'keep the staged S3 object after --method import'}),
    concurrency: Flags.integer({description: 'blocks (ebs) or parts (import) in flight', min: 1, max: 64}),
    json: Flags.boolean({description: 'print progress events and the result ({imageId, snapshotId, region, seconds, ...}) as JSON lines'}),
  };

  async run(): Promise<void> {
    const interrupts = trapInterrupts();
    const {args, flags} = await this.parse(PushAws);
    const render = createProgressRenderer(flags.json);
    // What a push creates (a snapshot being written, a staged S3 object) is journalled like a
    // run's instances, so `tskit gc aws` removes it if this process dies.
    const journal = await RunJournal.create(stateDir(), newRunId(), 'push aws');
    const provider = new AwsProvider({journal});
    try {
      const options: AwsPushOptions = {
        ...(flags.method ? {method: flags.method as AwsPushOptions['method']} : {}),
        ...(flags.bucket ? {bucket: flags.bucket} : {}),
        ...(flags.name ? {name: flags.name} : {}),
        ...(flags.arch ? {arch: flags.arch as AwsPushOptions['arch']} : {}),
        ...(flags.boot ? {boot: flags.boot as AwsPushOptions['boot']} : {}),
        ena: flags.ena,
        tags: parseTags(flags.tag ?? []),
        force: flags.force,
        ...(flags['role-name'] ? {roleName: flags['role-name']} : {}),
        keepObject: flags['keep-object'],
        ...(flags.concurrency ? {concurrency: flags.concurrency} : {}),
        signal: interrupts.stop,
      };
      if (options.name !== undefined && (options.name.length < 3 || options.name.length > 128)) throw new TskitError('--name must be 3 to 128 characters (an AMI name)');
      // The file first: a wrong file is known without asking AWS anything.
      await diskFileFormat(args.file);
      await provider.check();
      const pushed = await provider.push({path: args.file, format: ''}, options, render.emit);
      const r = pushed.detail;
      render.result({imageId: r.imageId, snapshotId: r.snapshotId, region: r.region, seconds: Math.round(r.seconds * 1000) / 1000, name: r.name, method: r.method, arch: r.arch, ...(r.bootMode ? {bootMode: r.bootMode} : {}), reused: r.reused, bytesSent: r.bytesSent, sha256: r.sha256}, () => r.imageId);
      if (!flags.json) process.stderr.write(`tskit: ${r.reused ? 'reused' : 'registered'} ${r.imageId} (${r.name}, ${r.arch}${r.bootMode ? `, ${r.bootMode}` : ''}) in ${r.region}; ${formatBytes(r.bytesSent)} sent in ${r.seconds.toFixed(1)} s\n`);
    } catch (error) {
      if (interrupts.stop.aborted) {
        const interruption = interrupts.stop.reason as Interruption;
        process.stderr.write(`tskit: ${interruption.message}; run the same command again to continue the upload\n`);
        process.exitCode = interruption.exitCode;
        return;
      }
      throw error;
    } finally {
      render.done();
      // An interrupted or failed push leaves its snapshot (or S3 upload) in the journal: running
      // the command again continues with it (and takes it over), `tskit gc aws` removes it.
      await journal.close();
      await provider.close();
      interrupts.dispose();
    }
  }
}

function parseTags(values: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new TskitError(`--tag ${value}: expected KEY=VALUE`);
    const key = value.slice(0, eq);
    if (key.startsWith('aws:')) throw new TskitError(`--tag ${value}: keys starting with aws: are AWS's own`);
    tags[key] = value.slice(eq + 1);
  }
  return tags;
}
