import {Args} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {cacheDirFlags, cacheDirFromFlags, jsonFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer, formatBytes} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheRm extends TskitCommand {
  static override summary = 'Remove images from the cache, keeping blobs other images share';
  static override description =
    'Remove images from the cache. Only blobs no other cached image (and no running build) needs are deleted; shared layers stay';
  static override examples = ['<%= config.bin %> cache rm alpine:3.20 linuxkit/init:v1.2.0'];
  static override args = {refs: Args.string({description: 'image references, as `cache ls` shows them or in short form', required: true})};
  static override strict = false;
  static override flags = {...cacheDirFlags, ...jsonFlags};

  async run(): Promise<void> {
    const {flags, argv} = await this.parse(CacheRm);
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const result = await cache.remove(argv as string[]);
      render.result(result, () =>
        [
          ...result.removed.map((ref) => `removed ${ref}`),
          `deleted ${result.deletedBlobs.length} blobs (${formatBytes(result.freedBytes)})` +
            (result.keptBlobs.length ? `; kept ${result.keptBlobs.length} blobs other images or running builds use` : ''),
        ].join('\n'),
      );
    } finally {
      await cache.close();
    }
  }
}
