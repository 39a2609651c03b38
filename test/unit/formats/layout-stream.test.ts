// The layouts stream: a disk whose initrd is 1 GiB is produced with memory that does not
// grow with the initrd (the extents read the file while they are consumed).
import {createHash} from 'node:crypto';
import {mkdtemp, rm, truncate, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, expect, inject, it} from 'vitest';
import type {BootloaderFiles} from '../../../src/formats/bootloader.ts';
import {bootDisk, bootIso} from '../../../src/formats/layout.ts';
import {fixtureBootloader} from '../../support/disk-layouts.ts';

const GiB = 1024 * 1024 * 1024;
let work: string;
let loader: BootloaderFiles;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-stream-'));
  loader = await fixtureBootloader(inject('tskitFixtures'), join(work, 'bootloader'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

it('lays out a 1 GiB initrd with flat memory (disk and ISO)', async () => {
  const initrd = join(work, 'initrd');
  await writeFile(initrd, 'initrd head');
  await truncate(initrd, GiB); // sparse: cheap to make, read like any file
  const kernel = join(work, 'kernel');
  await writeFile(kernel, Buffer.alloc(5 * 1024 * 1024, 7));
  const payload = {
    kernel: {path: kernel, size: 5 * 1024 * 1024, sha256: 'k'},
    initrd: {path: initrd, size: GiB, sha256: 'i'},
    cmdline: 'console=ttyS0',
  };
  for (const [name, image] of [['disk', bootDisk(payload, loader, {boot: 'hybrid', mtime: 0})], ['iso', bootIso(payload, loader, {boot: 'bios', mtime: 0})]] as const) {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let bytes = 0;
    let last = -1;
    const hash = createHash('sha1');
    for await (const extent of image.extents()) {
      expect(extent.offset).toBeGreaterThan(last);
      last = extent.offset;
      bytes += extent.data.length;
      hash.update(extent.data.subarray(0, 512));
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(bytes).toBeGreaterThan(GiB);
    const grew = (peak - before) / (1024 * 1024);
    console.info(`[stream] ${name} of ${(image.size / GiB).toFixed(2)} GiB: RSS grew ${grew.toFixed(0)} MiB while producing ${(bytes / GiB).toFixed(2)} GiB of extents`);
    expect(grew).toBeLessThan(200);
  }
});
