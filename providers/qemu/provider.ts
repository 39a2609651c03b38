// The qemu provider's entry: what the registry (src/run/provider-registry.ts) finds in this
// folder. It stays light: the provider itself loads only when a command needs it.
import {resolve} from 'node:path';
import {defineProvider} from '../../src/run/provider-entry.ts';
import {bootableFormats} from './image.ts';

export default defineProvider({
  name: 'qemu',
  description: 'boot on this machine with QEMU',
  formats: bootableFormats,
  load: async () => (await import('./index.ts')).qemuProvider,
  manifestOptions: {
    type: 'object',
    props: {
      accel: {type: 'enum', values: ['auto', 'kvm', 'tcg']},
      cpus: {type: 'integer', go: 'int'},
      'cpu-model': {type: 'string'},
      mem: {type: 'id'},
      disk: {type: 'array', items: {type: 'string'}},
      publish: {type: 'array', items: {type: 'string'}},
      uefi: {type: 'boolean'},
      firmware: {type: 'string'},
      cmdline: {type: 'string'},
      // user, none, tap,NAME or bridge,NAME: checked by qemuRunOptions
      networking: {type: 'string'},
      format: {type: 'string'},
      arch: {type: 'string'},
      data: {type: 'string'},
      'data-file': {type: 'string'},
    },
  },
  runOptions: async (block) => {
    const {qemuRunOptions} = await import('./options.ts');
    return qemuRunOptions(block as Parameters<typeof qemuRunOptions>[0], 'qemu.');
  },
  // a path, relative to the manifest's directory
  imageId: (text, dir) => resolve(dir, text),
});
