import {Args, Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {importLayout} from '../../oci/cache-transfer.ts';
import {cacheDirFlags, cacheDirFromFlags, jsonFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheImport extends TskitCommand {
  static override summary = 'Import images from an OCI layout tar or directory';
  static override description =
    "Import images from an OCI image layout (a tar, a .tar.gz, a directory, or '-' for a tar on stdin). Every blob is verified against its digest";
  static override examples = ['<%= config.bin %> cache import alpine.tar', 'cat image.tar | <%= config.bin %> cache import - --name example.com/app:1.0'];
  static override args = {source: Args.string({description: "OCI layout tar or directory, or '-'", required: true})};
  static override flags = {
    ...cacheDirFlags,
    ...jsonFlags,
    name: Flags.string({description: 'Name for the image when the archive carries none (or a bare tag)', helpValue: 'REF'}),
  };

  async run(): Promise<void> {
    const {flags, args} = await this.parse(CacheImport);
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const result = await importLayout(cache, args.source, {emit: render.emit, ...(flags.name ? {name: flags.name} : {})});
      render.result(result, () =>
        [
          ...result.images.map((image) => `imported ${image.ref} (${image.digest}${image.platforms.length ? `, ${image.platforms.join(', ')}` : ''})`),
          `${result.blobs} blobs verified, ${result.newBlobs} new`,
        ].join('\n'),
      );
    } finally {
      await cache.close();
    }
  }
}
