// `tskit run aws AMI|NAME`: flags in, events out. The run loop is src/run/session.ts, the
// instances are providers/aws; this file only translates flags and renders.
import {Args, Flags} from '@oclif/core';
import {AwsProvider, type AwsRunOptions} from '../../../providers/aws/index.ts';
import {createConsoleRenderer, type ConsoleRenderer} from '../../cli/console-render.ts';
import {TskitCommand} from '../../cli/command.ts';
import {parseDuration} from '../../run/duration.ts';
import {compileMarker} from '../../run/markers.ts';
import {runSession} from '../../run/session.ts';
import {trapInterrupts} from '../../run/signals.ts';

export default class RunAws extends TskitCommand {
  static override summary = 'Boot an AMI on EC2 and stream its serial console';

  static override description = `AMI|NAME is an AMI id (ami-...) or the name of an AMI you own (tskit push aws prints both).

Instances are tagged tskit:run-id and their serial console is streamed by polling GetConsoleOutput, each byte once and in order. The run ends as tskit run qemu does: a --wait-for match (exit 0), a --fail-on match or a kernel panic (1), the guest shutting down (0; 1 with --wait-for), --timeout (124), an AWS failure (125), Ctrl-C/SIGTERM (130/143). The instances and their volumes and network interfaces are deleted however the run ends, unless --keep; what a killed tskit left is removed by tskit gc aws.

Credentials and region come from the AWS SDK's standard settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).`;

  static override examples = [
    '<%= config.bin %> run aws ami-0123456789abcdef0 --wait-for "HELLO-OK" --timeout 10m',
    '<%= config.bin %> run aws hello-1a2b3c4d5e6f --count 3 --instance-type t3.small',
    '<%= config.bin %> run aws web --subnet subnet-0abc --security-group sg-0def --key-name me --keep',
  ];

  static override args = {
    image: Args.string({description: 'AMI id or name', required: true}),
  };

  static override flags = {
    'instance-type': Flags.string({description: 'EC2 instance type (default: t3.micro, t4g.micro for arm64 AMIs)'}),
    subnet: Flags.string({description: 'subnet id (default: the default VPC\'s)'}),
    'security-group': Flags.string({description: 'security group id (repeatable; default: the VPC\'s default group)', multiple: true, multipleNonGreedy: true}),
    'key-name': Flags.string({description: 'EC2 key pair name, for SSH'}),
    'user-data': Flags.string({description: 'file whose content is the instance user data (at most 16 KiB)'}),
    count: Flags.integer({description: 'instances to start', min: 1, max: 100, default: 1}),
    'wait-for': Flags.string({description: 'exit 0 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
    'fail-on': Flags.string({description: 'exit 1 as soon as a console line matches this regex (repeatable: any)', multiple: true, multipleNonGreedy: true}),
    timeout: Flags.string({description: 'give up after this long and exit 124 (90s, 5m, 1h30m, or seconds)'}),
    keep: Flags.boolean({description: 'leave the instances running when the run ends (tskit gc aws leaves them too)'}),
    'poll-interval': Flags.string({description: 'how often to read the console and the instance state', default: '2s'}),
    'console-file': Flags.string({description: 'also write the raw console to this file'}),
    json: Flags.boolean({description: 'print NDJSON events (console, matched, verdict, ...) on stdout instead of the console'}),
    verbose: Flags.boolean({char: 'v', description: 'also report instance ids and lifecycle on stderr'}),
  };

  async run(): Promise<void> {
    // Before anything slow, so a Ctrl-C during start-up still tears down what was made.
    const interrupts = trapInterrupts();
    let renderer: ConsoleRenderer | undefined;
    // the run loop journals what the run creates (the provider records into it), for `tskit gc`
    const provider = new AwsProvider();
    try {
      const {args, flags} = await this.parse(RunAws);
      let stdoutGone = false;
      process.stdout.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' || stdoutGone) return;
        stdoutGone = true;
        interrupts.raise('SIGPIPE');
      });
      const stdout = {write: (chunk: string | Uint8Array) => stdoutGone || process.stdout.write(chunk)};
      renderer = createConsoleRenderer({json: flags.json, stdout, stderr: process.stderr, verbose: flags.verbose, consoleFile: flags['console-file']});
      provider.lastEmit = renderer.emit;
      const runOptions: AwsRunOptions = {
        ...(flags['instance-type'] ? {instanceType: flags['instance-type']} : {}),
        ...(flags.subnet ? {subnet: flags.subnet} : {}),
        ...(flags['security-group'] ? {securityGroups: flags['security-group']} : {}),
        ...(flags['key-name'] ? {keyName: flags['key-name']} : {}),
        ...(flags['user-data'] ? {userDataFile: flags['user-data']} : {}),
        count: flags.count,
        keep: flags.keep,
        pollMs: parseDuration(flags['poll-interval'], '--poll-interval'),
      };
      const result = await runSession({
        provider,
        image: {provider: 'aws', id: args.image},
        runOptions,
        waitFor: (flags['wait-for'] ?? []).map((s) => compileMarker(s, '--wait-for')),
        failOn: (flags['fail-on'] ?? []).map((s) => compileMarker(s, '--fail-on')),
        ...(flags.timeout ? {timeoutMs: parseDuration(flags.timeout, '--timeout')} : {}),
        emit: renderer.emit,
        onConsole: renderer.onConsole,
        signal: interrupts.stop,
        hurry: interrupts.hurry,
        // A polled console arrives in bursts: give the last one time to come in.
        drainMs: Math.max(2000, runOptions.pollMs! + 1000),
      });
      if (result.outcomes.length === 0 && !flags.json) process.stderr.write(`tskit: ${result.reason}\n`);
      process.exitCode = result.exitCode;
    } finally {
      renderer?.close();
      await provider.close();
      interrupts.dispose();
    }
  }
}
