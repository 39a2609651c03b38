import {Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {cacheDirFlags, cacheDirFromFlags, jsonFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer, formatBytes} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheClean extends TskitCommand {
  static override summary = 'Empty the cache, or delete only unused blobs';
  static override description =
    'Empty the cache, or with --unused delete only blobs no cached image needs. Blobs that running builds and pulls use are never deleted';
  static override examples = ['<%= config.bin %> cache clean', '<%= config.bin %> cache clean --unused'];
  static override flags = {
    ...cacheDirFlags,
    ...jsonFlags,
    unused: Flags.boolean({description: 'Keep every cached image; delete only blobs none of them needs', default: false}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(CacheClean);
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const result = await cache.clean({unusedOnly: flags.unused});
      render.result(result, () =>
        `${flags.unused ? '' : `removed ${result.removed.length} images; `}deleted ${result.deletedBlobs.length} blobs (${formatBytes(result.freedBytes)})` +
          (result.keptBlobs.length ? `; kept ${result.keptBlobs.length} blobs in use` : ''),
      );
    } finally {
      await cache.close();
    }
  }
}
