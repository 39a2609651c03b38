import {Args, Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {cacheDirFlags, cacheDirFromFlags, jsonFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheVerify extends TskitCommand {
  static override summary = 'Re-hash cached blobs and report damaged ones';
  static override description = 'Re-hash cached blobs (all, or those of the given images) and report damaged ones; --repair deletes them so they are pulled again';
  static override args = {refs: Args.string({description: 'image references (default: every blob)'})};
  static override strict = false;
  static override flags = {
    ...cacheDirFlags,
    ...jsonFlags,
    repair: Flags.boolean({description: 'Delete damaged blobs', default: false}),
  };

  async run(): Promise<void> {
    const {flags, argv} = await this.parse(CacheVerify);
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const result = await cache.verify({refs: argv as string[], repair: flags.repair});
      render.result(result, () =>
        [`${result.checked} blobs checked, ${result.corrupt.length} damaged`, ...result.corrupt.map((d) => `damaged: ${d}${flags.repair ? ' (deleted)' : ''}`)].join('\n'),
      );
      if (result.corrupt.length && !flags.repair) this.exit(1);
    } finally {
      await cache.close();
    }
  }
}
