// `tskit run aws AMI|NAME`: flags in, events out. The run loop is src/run/session.ts, the
// instances are providers/aws; this file only translates flags and renders.
import {Args, Flags} from '@oclif/core';
import {AwsProvider, type AwsRunOptions} from '../../../providers/aws/index.ts';
import {TskitCommand} from '../../cli/command.ts';
import {runFlags, runProvider} from '../../cli/run-provider.ts';
import {parseDuration} from '../../run/duration.ts';
import {trapInterrupts} from '../../run/signals.ts';

export default class RunAws extends TskitCommand {
  static override summary = 'Boot an AMI on EC2 and stream its serial console';

  static override description = `AMI|NAME is an AMI id (ami-...) or the name of an AMI you own (tskit push aws prints both).

Instances are tagged tskit:run-id and their serial console is streamed by polling GetConsoleOutput, each byte once and in order. The run ends as tskit run qemu does: a --wait-for match (exit 0), a --fail-on match or a kernel panic (1), the guest shutting down (0; 1 with --wait-for), --timeout (124), an AWS failure (125), Ctrl-C/SIGTERM (130/143). The instances and their volumes and network interfaces are deleted however the run ends, unless --keep; what a killed tskit left is removed by tskit gc aws.

With --count N the instances form a cluster: one network interface per member is made first in one subnet (--subnet, else the default VPC's first default subnet), each instance boots on its own, and each one's user data tells it, in LinuxKit's metadata form, its index and every member's address (/run/config/tskit/index, .../peers), beside your --user-data when that is LinuxKit metadata JSON (other user data goes as given). Each gets its own verdict; the run passes when all do (or --min-pass K).

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
    ...runFlags,
    keep: Flags.boolean({description: 'leave the instances running when the run ends (tskit gc aws leaves them too)'}),
    'poll-interval': Flags.string({description: 'how often to read the console and the instance state', default: '2s'}),
    verbose: Flags.boolean({char: 'v', description: 'also report instance ids and lifecycle on stderr'}),
  };

  async run(): Promise<void> {
    // Before anything slow, so a Ctrl-C during start-up still tears down what was made.
    const interrupts = trapInterrupts();
    // the run loop journals what the run creates (the provider records into it), for `tskit gc`
    const provider = new AwsProvider();
    try {
      const {args, flags} = await this.parse(RunAws);
      const pollMs = parseDuration(flags['poll-interval'], '--poll-interval');
      await runProvider({
        command: 'run aws',
        provider,
        image: {provider: 'aws', id: args.image},
        flags,
        interrupts,
        runOptions: (): AwsRunOptions => ({
          ...(flags['instance-type'] ? {instanceType: flags['instance-type']} : {}),
          ...(flags.subnet ? {subnet: flags.subnet} : {}),
          ...(flags['security-group'] ? {securityGroups: flags['security-group']} : {}),
          ...(flags['key-name'] ? {keyName: flags['key-name']} : {}),
          keep: flags.keep,
          pollMs,
        }),
        // A polled console arrives in bursts: give the last one time to come in.
        session: {drainMs: Math.max(2000, pollMs + 1000)},
        onRenderer: (renderer) => (provider.lastEmit = renderer.emit),
      });
    } finally {
      await provider.close();
      interrupts.dispose();
    }
  }
}
