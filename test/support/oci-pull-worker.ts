// Test material: one process pulling one image into a cache directory, for the tests that
// run several at once. Usage: node oci-pull-worker.ts CACHE_DIR REF ARCH
import {ImageCache} from '../../src/oci/cache.ts';
import {platformForArch} from '../../src/oci/platform.ts';

const [dir, ref, arch] = process.argv.slice(2);
if (!dir || !ref || !arch) throw new Error('usage: oci-pull-worker.ts CACHE_DIR REF ARCH');
const cache = new ImageCache({dir});
try {
  const image = await cache.resolve(ref, platformForArch(arch));
  process.stdout.write(`${JSON.stringify({digest: image.digest, layers: image.layers.map((l) => l.digest)})}\n`);
} finally {
  await cache.close();
}
