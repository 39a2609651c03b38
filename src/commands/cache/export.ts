import {Args, Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {exportImage, exportImageToFile} from '../../oci/cache-transfer.ts';
import {archFlag, cacheDirFlags, cacheDirFromFlags, jsonFlags, platformsFromArchFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer, formatBytes} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';

export default class CacheExport extends TskitCommand {
  static override summary = 'Write a cached image as an OCI layout tar';
  static override description =
    'Write a cached image as an OCI image layout tar (loadable with `skopeo copy oci-archive:FILE.tar ...` or `tskit cache import`). For a multi-platform image, one platform is exported unless --all';
  static override examples = ['<%= config.bin %> cache export alpine:3.20 -o alpine.tar', '<%= config.bin %> cache export linuxkit/init:v1.2.0 --arch arm64 -o - > init.tar'];
  static override args = {ref: Args.string({description: 'image reference in the cache', required: true})};
  static override flags = {
    ...cacheDirFlags,
    ...jsonFlags,
    output: Flags.string({char: 'o', description: "Output file, or '-' for stdout", required: true, aliases: ['outfile'], helpValue: 'FILE'}),
    arch: archFlag,
    all: Flags.boolean({description: 'Export every platform of an index (all must be cached)', default: false}),
    name: Flags.string({description: 'Name to record in the archive instead of the reference', helpValue: 'REF'}),
  };

  async run(): Promise<void> {
    const {flags, args} = await this.parse(CacheExport);
    const toStdout = flags.output === '-';
    if (toStdout && flags.json) this.error('--json cannot be used with -o -: both would write to stdout', {exit: 2});
    const render = createProgressRenderer(flags.json);
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit});
    try {
      const options = {platform: platformsFromArchFlags(flags.arch)[0]!, all: flags.all, emit: render.emit, ...(flags.name ? {name: flags.name} : {})};
      const result = toStdout ? await exportImage(cache, args.ref, process.stdout, options) : await exportImageToFile(cache, args.ref, flags.output, options);
      if (!toStdout) render.result({...result, output: flags.output}, () => `exported ${result.name} (${result.root.digest}, ${result.blobs} blobs, ${formatBytes(result.bytes)}) to ${flags.output}`);
    } finally {
      await cache.close();
    }
  }
}
