// Fuzzes the tar reader and the flattening of layers on top of it (test/fuzz/harness.ts):
// the corpus in test/fuzz/corpus/tar/ is replayed, then inputs from the tar grammar and
// mutations of the corpus run for a few seconds. Every input must be read or refused with a
// one-line TskitError, in bounded time and memory.
import {describe, expect, it} from 'vitest';
import {flattenLayers} from '../../src/build/flatten.ts';
import {readTar} from '../../src/build/tar/reader.ts';
import {writeTar} from '../../src/build/tar/writer.ts';
import {withParents} from '../../src/build/top-level.ts';
import {decompress} from '../../src/oci/layer.ts';
import {fuzz, fuzzTestTimeout, type FuzzTarget} from './harness.ts';
import {tarStreams} from './tar-grammar.ts';

/** The input in chunks of varied sizes, so reads straddle chunk boundaries everywhere. */
async function* chunks(input: Buffer): AsyncGenerator<Buffer> {
  const sizes = [1, 7, 512, 4096, 3, 1000];
  for (let at = 0, i = input.length; at < input.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield input.subarray(at, at + size);
    at += size;
  }
}

const what = 'layer 1/1 (sha256:fuzz) of fuzz/image:1';

export const tarTarget: FuzzTarget = {
  name: 'tar',
  extension: '.tar',
  async run(input) {
    // the reader alone, every member's content read (or, every other one, left for the reader to skip)
    let n = 0;
    for await (const entry of readTar(decompress(chunks(input), what), what)) {
      if (entry.content && n++ % 2 === 0) for await (const _ of entry.content) void _;
    }
    // and as a layer: two passes, whiteouts, links, symlinks resolved inside the image, the
    // final pass that keeps entries from under symlinks, and the tar writer
    const layer = {what, open: () => readTar(decompress(chunks(input), what), what)};
    for await (const chunk of writeTar(withParents(flattenLayers([layer, {...layer, what: 'layer 2/2 (sha256:fuzz) of fuzz/image:1'}], {mtime: 0}), 0))) void chunk;
  },
};

describe('fuzzing the tar reader and layer flattening', () => {
  it('reads or refuses every input with one TskitError line, in bounded time and memory', async () => {
    const report = await fuzz(tarTarget, tarStreams);
    console.info(`tar fuzz: ${report.corpus} corpus inputs, ${report.runs} generated (${report.refused} refused), seed ${report.seed}${report.saved.length ? `, saved ${report.saved.join(', ')}` : ''}`);
    expect(report.failure).toBeUndefined();
    expect(report.runs).toBeGreaterThan(20); // it ran (a loaded machine makes fewer)
  }, fuzzTestTimeout());
});
