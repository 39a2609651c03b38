// Fuzzes every disk reader through the one entry point, openDisk (src/formats/decode.ts), on
// bytes in memory (test/fuzz/harness.ts): the corpus in test/fuzz/corpus/disk/ (gzip'd disk
// images: qemu-img's small images of every format, and what fuzzing found) is replayed, then
// mutations of it run for a few seconds. Every input
// must open and read (extents, readAt, the boot probe) or be refused with a one-line
// TskitError, in bounded time and memory.
import fc from 'fast-check';
import {beforeAll, describe, expect, it} from 'vitest';
import {openDisk} from '../../src/formats/decode.ts';
import {fuzz, fuzzTestTimeout, loadCorpus, type FuzzTarget} from './harness.ts';

export const diskTarget: FuzzTarget = {
  name: 'disk',
  extension: '.img',
  gzipCorpus: true,
  async run(input) {
    const disk = await openDisk(input, {name: 'fuzz.img'});
    try {
      let stored = 0;
      for await (const extent of disk.image.extents()) {
        stored += extent.data.length;
        if (stored > 64 * 1024 * 1024) break; // a fuzzed table may map much; what is read so far is enough
      }
      await disk.readAt(0, 4096);
      await disk.readAt(Math.max(0, disk.image.size - 4096), 4096);
      await disk.probe();
    } finally {
      await disk.close();
    }
  },
};

// The seeds are in the corpus: qemu-img's images of a 1 MiB disk ("tskit fuzz seed" at byte 0,
// 4 KiB of 0xa5 at 300 KiB) as qcow2 v3, qcow2 v2 compressed, dynamic and fixed VHD, VHDX,
// streamOptimized and monolithicSparse VMDK, and the GCE tarball (oldgnu tar, gzip'd).
let seeds: Buffer[] = [];
beforeAll(async () => {
  seeds = (await loadCorpus(diskTarget)).filter((c) => c.name.startsWith('seed-')).map((c) => c.bytes);
  expect(seeds.length).toBeGreaterThanOrEqual(8);
});

describe('fuzzing the disk readers', () => {
  it('opens and reads, or refuses, every input with one TskitError line, in bounded time and memory', async () => {
    // qemu-img's images with bytes changed where the headers and tables are (the first 256 KiB
    // and the last 4 KiB of these small images): single bytes, or eight 0xff (a huge number)
    const mutatedSeeds = fc.tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255}), fc.nat(7)), {minLength: 1, maxLength: 12})).map(([i, changes]) => {
      const bytes = Buffer.from(seeds[i % seeds.length]!);
      for (const [at, value, kind] of changes) {
        const where = at % 2 === 0 ? at % Math.min(bytes.length, 256 * 1024) : bytes.length - 1 - (at % Math.min(bytes.length, 4096));
        if (kind === 0) bytes.fill(0xff, where, Math.min(bytes.length, where + 8));
        else bytes[where] = value;
      }
      return bytes;
    });
    const report = await fuzz(diskTarget, mutatedSeeds);
    console.info(`disk fuzz: ${report.corpus} corpus inputs, ${report.runs} generated (${report.refused} refused), seed ${report.seed}${report.saved.length ? `, saved ${report.saved.join(', ')}` : ''}`);
    expect(report.failure).toBeUndefined();
    expect(report.runs).toBeGreaterThan(20); // it ran (a loaded machine makes fewer)
  }, fuzzTestTimeout());
});
