import {Args, Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {archFlag, cacheDirFlags, cacheDirFromFlags, jsonFlags, registryFlags, registryOptionsFromFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';
import {platformForArch} from '../../oci/platform.ts';
import {pushImage} from '../../oci/push.ts';
import {RegistryClient} from '../../oci/registry.ts';

export default class CachePush extends TskitCommand {
  static override summary = 'Push a cached image to a registry';
  static override description = 'Push a cached image to a registry (all of an index, or one platform with --arch)';
  static override examples = ['<%= config.bin %> cache push registry.example.com/app:1.0', '<%= config.bin %> cache push alpine:3.20 --to localhost:5000/alpine:3.20'];
  static override args = {ref: Args.string({description: 'image reference in the cache', required: true})};
  static override flags = {
    ...cacheDirFlags,
    ...registryFlags,
    ...jsonFlags,
    to: Flags.string({description: 'Reference to push to (default: the image reference itself)', helpValue: 'REF'}),
    arch: archFlag,
    'chunk-size': Flags.integer({description: 'Upload blobs in chunks of this many MiB (0: one request per blob)', default: 16, min: 0}),
  };

  async run(): Promise<void> {
    const {flags, args} = await this.parse(CachePush);
    const render = createProgressRenderer(flags.json);
    const registry = await registryOptionsFromFlags(flags, render.emit);
    const client = new RegistryClient({...registry, emit: render.emit});
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit, client});
    try {
      const result = await pushImage(cache, client, args.ref, flags.to ?? args.ref, {
        emit: render.emit,
        ...(flags.arch ? {platform: platformForArch(flags.arch)} : {}),
        ...(flags['chunk-size'] === 0 ? {monolithic: true} : {chunkSize: flags['chunk-size'] * 1024 * 1024}),
      });
      render.result(result, () => `${result.ref}: ${result.digest} (${result.blobs.uploaded} blobs uploaded, ${result.blobs.mounted} mounted, ${result.blobs.exists} already there)`);
    } finally {
      await cache.close();
      await client.close();
    }
  }
}
