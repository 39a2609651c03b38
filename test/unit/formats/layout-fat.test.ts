// FAT volumes from tskit's writer, read back by dosfstools (fsck.fat) and mtools: every
// file's bytes, long and short names, nested directories, FAT16 and FAT32.
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {bufferContent, fileContent, regionExtents} from '../../../src/formats/content.ts';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {chooseGeometry, fatSizeFor, fatVolume, type FatFile, type FatType} from '../../../src/formats/fat.ts';
import {payloadFile, tool} from '../../support/disk-layouts.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-fat-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function writeVolume(type: FatType, files: FatFile[], name: string, mtime = 1_500_000_000) {
  const size = fatSizeFor(files, type);
  const volume = fatVolume({size, files, volumeId: 0x1234abcd, label: 'TESTVOL', mtime, type});
  const path = join(work, name);
  await encodeDisk('raw', {size, extents: () => regionExtents(volume.regions, size)}, path);
  return {path, volume};
}

describe('FAT writer', () => {
  for (const type of [16, 32] as const) {
    it(`FAT${type}: fsck.fat finds no problem and mtools reads every file back`, async () => {
      const big = await payloadFile(join(work, `big${type}`), 3_000_001, `big${type}`);
      const files: FatFile[] = [
        {path: 'EFI/BOOT/BOOTX64.EFI', content: bufferContent(Buffer.from('efi binary'))},
        {path: 'loader/entries/a-long-entry-name.conf', content: bufferContent(Buffer.from('title x\n'))},
        {path: 'loader/loader.conf', content: bufferContent(Buffer.from('timeout 0\n'))},
        {path: 'kernel', content: fileContent(big.path, big.size)},
        {path: 'Mixed.Case.Name.txt', content: bufferContent(Buffer.from('mixed\n'))},
        {path: 'empty', content: bufferContent(Buffer.alloc(0))},
        ...Array.from({length: 40}, (_, i): FatFile => ({path: `many/file-number-${i}.data`, content: bufferContent(Buffer.from(`file ${i}\n`))})),
      ];
      const {path, volume} = await writeVolume(type, files, `fat${type}.img`);
      expect(volume.geometry.type).toBe(type);
      const fsck = await tool('fsck.fat', ['-n', '-v', path]);
      expect(fsck.code, fsck.out).toBe(0);
      expect(fsck.out).not.toMatch(/wrong|differ|invalid|corrupt|checksum/i);
      expect(fsck.out).toContain(`${type} bit entries`);
      const listing = await tool('mdir', ['-/', '-a', '-i', path, '::']);
      expect(listing.out).toContain('a-long-entry-name.conf');
      expect(listing.out).toContain('Mixed.Case.Name.txt');
      expect(listing.out).toContain('Volume in drive : is TESTVOL');
      for (const file of files) {
        const out = join(work, `out-${type}`);
        const copied = await tool('mcopy', ['-n', '-o', '-i', path, `::${file.path}`, out]);
        expect(copied.code, copied.out).toBe(0);
        const chunks: Buffer[] = [];
        for await (const chunk of file.content.chunks()) chunks.push(chunk);
        const expected = Buffer.concat(chunks);
        expect((await readFile(out)).equals(expected), file.path).toBe(true);
      }
    });
  }

  it('is deterministic, and the timestamp is part of the bytes', async () => {
    const files = (): FatFile[] => [{path: 'a/b.txt', content: bufferContent(Buffer.from('x'))}];
    const one = await writeVolume(32, files(), 'det1.img');
    const two = await writeVolume(32, files(), 'det2.img');
    const three = await writeVolume(32, files(), 'det3.img', 1_600_000_000);
    const [a, b, c] = await Promise.all([one.path, two.path, three.path].map((p) => readFile(p)));
    expect(a!.equals(b!)).toBe(true);
    expect(a!.equals(c!)).toBe(false);
  });

  it('picks FAT32 only with at least 65,525 clusters, and 4 KiB clusters on big volumes', () => {
    expect(() => chooseGeometry((16 * 1024 * 1024) / 512, 32)).toThrow(/not possible/);
    expect(chooseGeometry((16 * 1024 * 1024) / 512).type).toBe(16);
    const small = chooseGeometry((40 * 1024 * 1024) / 512);
    expect(small.type).toBe(32);
    expect(small.clusters).toBeGreaterThanOrEqual(65525);
    expect(chooseGeometry((2 * 1024 * 1024 * 1024) / 512).sectorsPerCluster).toBe(8);
  });

  it('refuses names FAT cannot hold and files that do not fit', () => {
    expect(() => fatVolume({size: 40 << 20, files: [{path: 'a:b', content: bufferContent(Buffer.alloc(1))}], volumeId: 1, label: 'X', mtime: 0})).toThrow(/not a valid FAT long file name/);
    expect(() => fatVolume({size: 40 << 20, files: [{path: 'big', content: {size: 41 << 20, chunks: async function* () {}}}], volumeId: 1, label: 'X', mtime: 0})).toThrow(/need/);
  });
});
