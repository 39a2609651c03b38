// The AWS provider's entry: what the registry (src/run/provider-registry.ts) finds in this
// folder. It stays light: the AWS SDK loads only when an AWS push, run, test or gc needs it.
import {defineProvider} from '../../src/run/provider-entry.ts';

export default defineProvider({
  name: 'aws',
  description: 'Amazon EC2: AMIs from EBS snapshots, instances with their serial console',
  formats: ['aws', 'raw-bios', 'raw-efi', 'vmdk'],
  load: async () => new (await import('./index.ts')).AwsProvider(),
  manifestOptions: {
    type: 'object',
    props: {
      'instance-type': {type: 'string'},
      subnet: {type: 'string'},
      'security-group': {type: 'array', items: {type: 'string'}},
      'key-name': {type: 'string'},
      'poll-interval': {type: 'id'},
    },
  },
  runOptions: async (block) => {
    const {parseDuration} = await import('../../src/run/duration.ts');
    const text = (key: string) => (typeof block[key] === 'string' ? (block[key] as string) : undefined);
    return {
      ...(text('instance-type') ? {instanceType: text('instance-type')} : {}),
      ...(text('subnet') ? {subnet: text('subnet')} : {}),
      ...(Array.isArray(block['security-group']) ? {securityGroups: block['security-group']} : {}),
      ...(text('key-name') ? {keyName: text('key-name')} : {}),
      ...(block['poll-interval'] !== undefined ? {pollMs: parseDuration(String(block['poll-interval']), 'aws.poll-interval')} : {}),
    };
  },
  // an AMI id or name, as `tskit run aws` takes it
  imageId: (text) => text,
});
