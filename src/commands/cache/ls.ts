import {ImageCache} from '../../oci/cache.ts';
import {cacheDirFlags, cacheDirFromFlags, jsonFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer, formatBytes, shortDigest} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheLs extends TskitCommand {
  static override summary = 'List cached images with their platforms and sizes';
  static override description = 'List the images in the cache, with their platforms and how many bytes each holds alone or shares with others';
  static override examples = ['<%= config.bin %> cache ls', '<%= config.bin %> cache ls --json | jq .images'];
  static override flags = {...cacheDirFlags, ...jsonFlags};

  async run(): Promise<void> {
    const {flags} = await this.parse(CacheLs);
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const listing = await cache.list();
      render.result(listing, () => {
        const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE', 'UNIQUE', 'SHARED']];
        for (const image of listing.images) {
          rows.push([
            image.ref,
            shortDigest(image.digest),
            image.platforms.join(',') || '-',
            formatBytes(image.size),
            formatBytes(image.uniqueSize),
            formatBytes(image.sharedSize),
          ]);
        }
        const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
        const table = rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
        const summary =
          `${listing.images.length} image${listing.images.length === 1 ? '' : 's'} in ${listing.dir}: ${formatBytes(listing.totalSize)} in ${listing.blobs} blobs` +
          (listing.unusedBlobs ? `; ${formatBytes(listing.unusedSize)} in ${listing.unusedBlobs} blobs unused (tskit cache clean --unused)` : '');
        return listing.images.length ? `${table}\n${summary}` : summary;
      });
    } finally {
      await cache.close();
    }
  }
}
