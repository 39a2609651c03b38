import {Args, Flags} from '@oclif/core';
import {ImageCache} from '../../oci/cache.ts';
import {ARCH_DESCRIPTION, cacheDirFlags, cacheDirFromFlags, jsonFlags, platformsFromArchFlags, downloadFlags, registryFlags, registryOptionsFromFlags} from '../../cli/image-flags.ts';
import {createProgressRenderer} from '../../cli/progress-render.ts';
import {TskitCommand} from '../../cli/command.ts';
import {interruptible} from '../../cli/interrupt.ts';
import {formatPlatform} from '../../oci/platform.ts';
import {layerIndexDeriver} from '../../build/layer-index.ts';

export default class CachePull extends TskitCommand {
  static override summary = 'Pull images into the cache';
  static override description = 'Pull images from their registries into the cache (tags are always resolved again)';
  static override examples = ['<%= config.bin %> cache pull alpine:3.20', '<%= config.bin %> cache pull linuxkit/init:v1.2.0 --arch amd64 --arch arm64'];
  static override args = {refs: Args.string({description: 'image references', required: true})};
  static override strict = false;
  static override flags = {
    ...cacheDirFlags,
    ...registryFlags,
    ...downloadFlags,
    ...jsonFlags,
    arch: Flags.string({multiple: true, multipleNonGreedy: true, description: `${ARCH_DESCRIPTION}. Repeatable; default: this machine's`, helpValue: 'ARCH'}),
  };

  async run(): Promise<void> {
    const {flags, argv} = await this.parse(CachePull);
    const render = createProgressRenderer(flags.json);
    const registry = await registryOptionsFromFlags(flags, render.emit);
    const interruption = new AbortController(); // Ctrl-C stops the downloads; what they wrote goes
    const cache = new ImageCache({dir: cacheDirFromFlags(flags), emit: render.emit, registry: {...registry, signal: interruption.signal}, pull: true, derivers: [layerIndexDeriver]});
    try {
      const pulled = await interruptible(async () => {
        const images = [];
        for (const ref of argv as string[]) {
          for (const platform of platformsFromArchFlags(flags.arch)) {
            const image = await cache.resolve(ref, platform);
            images.push({ref: image.ref, platform: formatPlatform(platform), digest: image.digest, ...(image.indexDigest ? {indexDigest: image.indexDigest} : {})});
          }
        }
        return images;
      }, interruption);
      render.result({images: pulled}, () => '');
    } finally {
      await cache.close();
    }
  }
}
