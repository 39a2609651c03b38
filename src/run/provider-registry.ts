// Providers by name, for the commands that are not about one provider: `tskit gc` (every
// provider's leftovers), `tskit test` (a manifest naming providers). Each entry loads its
// provider lazily, so a command pays only for the SDKs it uses, and says how a manifest's
// `<provider>:` block of run options is checked and turned into that provider's RunOpts.
// A provider (built in or from a plugin) joins with registerProvider().
import {resolve} from 'node:path';
import {TskitError} from '../errors.ts';
import type {Schema} from '../config/schema.ts';
import type {Provider} from '../provider.ts';

export interface ProviderEntry {
  name: string;
  load(): Promise<Provider<unknown, unknown>>;
  /** The run options a `tskit test` manifest may give under the provider's name (a mapping). */
  manifestOptions: Schema;
  /** Turns that block (plain values, already schema-checked) into the provider's RunOpts. */
  runOptions(block: Record<string, unknown>): Promise<unknown>;
  /** The image a manifest names, as the provider wants it (qemu: a path, relative to the manifest's directory). */
  imageId(text: string, manifestDir: string): string;
}

const str: Schema = {type: 'string'};
const strings: Schema = {type: 'array', items: str};

const builtIn: ProviderEntry[] = [
  {
    name: 'qemu',
    load: async () => (await import('../../providers/qemu/index.ts')).qemuProvider as Provider<unknown, unknown>,
    manifestOptions: {
      type: 'object',
      props: {
        accel: {type: 'enum', values: ['auto', 'kvm', 'tcg']},
        cpus: {type: 'integer', go: 'int'},
        'cpu-model': str,
        mem: {type: 'id'},
        disk: strings,
        publish: strings,
        uefi: {type: 'boolean'},
        firmware: str,
        cmdline: str,
        networking: str,
        format: str,
        arch: str,
        data: str,
        'data-file': str,
      },
    },
    runOptions: async (block) => {
      const {qemuRunOptions} = await import('../../providers/qemu/index.ts');
      return qemuRunOptions(block as Parameters<typeof qemuRunOptions>[0], 'qemu.');
    },
    imageId: (text, dir) => resolve(dir, text),
  },
  {
    name: 'aws',
    // The AWS SDK loads only when an AWS run, test or gc needs it.
    load: async () => new (await import('../../providers/aws/index.ts')).AwsProvider() as unknown as Provider<unknown, unknown>,
    manifestOptions: {
      type: 'object',
      props: {
        'instance-type': str,
        subnet: str,
        'security-group': strings,
        'key-name': str,
        'poll-interval': {type: 'id'},
      },
    },
    runOptions: async (block) => {
      const {parseDuration} = await import('./duration.ts');
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
  },
];

const registry = new Map<string, ProviderEntry>(builtIn.map((e) => [e.name, e]));

export function registerProvider(entry: ProviderEntry): void {
  registry.set(entry.name, entry);
}

export function providerNames(): string[] {
  return [...registry.keys()].sort();
}

export function providerEntry(name: string): ProviderEntry {
  const entry = registry.get(name);
  if (!entry) throw new TskitError(`unknown provider "${name}" (known: ${providerNames().join(', ')})`, {exitCode: 2});
  return entry;
}

export async function loadProvider(name: string): Promise<Provider<unknown, unknown>> {
  return providerEntry(name).load();
}
