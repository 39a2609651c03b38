// The streamOptimized VMDK, read back by an independent walk of the stream (test/support/
// disk-vmdk.ts) and checked against VMware's Virtual Disk Format 5.0: header and footer,
// descriptor, one deflated grain per non-zero 64 KiB with the right LBA, a grain table after
// each table's grains pointing at exactly those grains, the directory, end-of-stream.
import {mkdtempSync} from 'node:fs';
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {memoryDiskImage, mixedDisk, qemuCompare, qemuImg, qemuInfo} from '../../support/disk-images.ts';
import {parseStreamVmdk, type StreamVmdk} from '../../support/disk-vmdk.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GRAIN = 64 * KiB;
const dir = mkdtempSync(join(tmpdir(), 'tskit-test-vmdk-'));
// more than one grain table (512 grains = 32 MiB each), a size no grain divides, and a
// stretch of zeros covering a whole grain table in the middle
const size = 70 * MiB + 7 * 512;
let disk: Buffer;
let vmdk: Buffer;
let stream: StreamVmdk;

beforeAll(async () => {
  disk = mixedDisk(size, 'vmdk');
  disk.fill(0, 32 * MiB, 64 * MiB);
  disk.write('grain at the start of the third table', 64 * MiB + 512);
  await writeFile(join(dir, 'disk.raw'), disk);
  await encodeDisk('vmdk', memoryDiskImage(disk), join(dir, 'disk.vmdk'), {epoch: 1_600_000_000});
  vmdk = await readFile(join(dir, 'disk.vmdk'));
  stream = parseStreamVmdk(vmdk);
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('streamOptimized VMDK', () => {
  it('opens in qemu-img as streamOptimized and holds exactly the disk', () => {
    const info = qemuInfo(join(dir, 'disk.vmdk'));
    expect(info.format).toBe('vmdk');
    expect(info['virtual-size']).toBe(size);
    expect(info['format-specific']?.data).toMatchObject({'create-type': 'streamOptimized'});
    expect(qemuCompare(join(dir, 'disk.raw'), join(dir, 'disk.vmdk'), 'vmdk').identical).toBe(true);
    expect(qemuImg(['check', join(dir, 'disk.vmdk')])).toMatch(/No errors were found/);
  });

  it('has a sparse extent header that defers to its footer', () => {
    const h = stream.header;
    expect(h).toMatchObject({magic: 'KDMV', version: 3, capacity: size / 512, grainSize: 128, descriptorOffset: 1, numGTEsPerGT: 512, rgdOffset: 0n, uncleanShutdown: 0, newlineChars: '\n \r\n', compressAlgorithm: 1});
    expect(h.flags).toBe(0x30001); // newline test, compressed grains, markers
    expect(h.gdOffset).toBe(0xffffffffffffffffn);
    expect(h.overHead * 512).toBe(GRAIN);
    expect(h.descriptorOffset + h.descriptorSize).toBeLessThanOrEqual(h.overHead);
    // the footer is the header with the directory's place filled in
    expect(stream.footer.gdOffset).toBe(BigInt(stream.grainDirectory.sector));
    const footer = Buffer.from(stream.footerRaw);
    footer.writeBigUInt64LE(0xffffffffffffffffn, 56);
    expect(footer.equals(stream.headerRaw)).toBe(true);
  });

  it('embeds the descriptor vSphere and AWS import read', () => {
    const lines = stream.descriptor.split('\n');
    expect(lines[0]).toBe('# Disk DescriptorFile');
    expect(lines).toContain('createType="streamOptimized"');
    expect(lines).toContain('parentCID=ffffffff');
    expect(lines).toContain(`RW ${size / 512} SPARSE "disk.vmdk"`);
    expect(stream.descriptor).toMatch(/^CID=[0-9a-f]{8}$/m);
    expect(stream.descriptor).not.toMatch(/^CID=ffffffff$/m);
    for (const line of ['ddb.adapterType = "lsilogic"', 'ddb.virtualHWVersion = "4"', 'ddb.geometry.heads = "255"', 'ddb.geometry.sectors = "63"', `ddb.geometry.cylinders = "${Math.ceil(size / 512 / (255 * 63))}"`]) {
      expect(lines).toContain(line);
    }
    expect(stream.descriptor).toMatch(/^ddb\.longContentID = "[0-9a-f]{32}"$/m);
  });

  it('stores each non-zero grain once, deflated, marked with its LBA, in disk order', () => {
    const expected: number[] = [];
    for (let g = 0; g * GRAIN < size; g++) if (disk.subarray(g * GRAIN, (g + 1) * GRAIN).some((b) => b !== 0)) expected.push(g);
    expect(stream.grains.map((g) => g.lba / 128)).toEqual(expected);
    for (const grain of stream.grains) {
      expect(grain.lba % 128).toBe(0);
      const want = Buffer.alloc(GRAIN);
      disk.copy(want, 0, grain.lba * 512, Math.min(size, grain.lba * 512 + GRAIN));
      expect(grain.data.equals(want), `grain at LBA ${grain.lba}`).toBe(true);
    }
  });

  it('writes every grain table, each after the grains it covers, pointing at exactly those grains', () => {
    const gd = stream.grainDirectory;
    const tables = Math.ceil(Math.ceil(size / GRAIN) / 512);
    expect(gd.markerSectors).toBe(Math.ceil((tables * 4) / 512));
    expect(gd.entries.length).toBeGreaterThanOrEqual(tables);
    const bySector = new Map(stream.grains.map((g) => [g.sector, g]));
    const covered = new Set<number>();
    for (let t = 0; t < tables; t++) {
      const gtSector = gd.entries[t]!;
      const grainsHere = stream.grains.filter((g) => Math.floor(g.lba / 128 / 512) === t);
      const table = stream.grainTables.find((x) => x.sector === gtSector);
      expect(table, `directory entry ${t} points at a grain table`).toBeDefined();
      expect(table!.markerSectors).toBe(4);
      expect(table!.entries.length).toBe(512);
      // after its last grain, before the next table's first
      if (grainsHere.length > 0) expect(gtSector).toBeGreaterThan(Math.max(...grainsHere.map((g) => g.sector)));
      const later = stream.grains.filter((g) => Math.floor(g.lba / 128 / 512) > t);
      if (later.length > 0) expect(gtSector).toBeLessThan(Math.min(...later.map((g) => g.sector)));
      for (let e = 0; e < 512; e++) {
        const entry = table!.entries[e]!;
        const grain = t * 512 + e;
        if (entry === 0) continue;
        expect(bySector.get(entry)?.lba, `table ${t} entry ${e}`).toBe(grain * 128);
        covered.add(grain);
      }
    }
    expect([...covered]).toEqual(stream.grains.map((g) => g.lba / 128));
    expect(stream.grainTables).toHaveLength(tables);
    // the 32 MiB of zeros: a table with no entries
    expect(stream.grainTables.find((x) => x.sector === gd.entries[1])!.entries.every((e) => e === 0)).toBe(true);
  });

  it('ends with directory, footer and end-of-stream markers, in that order', () => {
    expect(stream.markers.slice(-3)).toEqual([2, 3, 0]);
    expect(stream.markers.slice(0, -3).every((m) => m === 1)).toBe(true);
    expect(stream.endOfStreamSector * 512).toBe(vmdk.length - 512);
    expect(vmdk.length % 512).toBe(0);
  });

  it('is the same bytes every time, and another SOURCE_DATE_EPOCH changes nothing but the ids', async () => {
    await mkdir(join(dir, 'again'));
    await encodeDisk('vmdk', memoryDiskImage(disk), join(dir, 'again', 'disk.vmdk'), {epoch: 1_600_000_000});
    expect((await readFile(join(dir, 'again', 'disk.vmdk'))).equals(vmdk)).toBe(true);
    await encodeDisk('vmdk', memoryDiskImage(disk), join(dir, 'again', 'disk.vmdk'), {epoch: 1_600_000_001});
    const other = parseStreamVmdk(await readFile(join(dir, 'again', 'disk.vmdk')));
    expect(other.descriptor).not.toBe(stream.descriptor);
    expect(other.grains.length).toBe(stream.grains.length);
  });

  it('names its final file in the descriptor when written under a staging name (the build writes hidden temp names)', async () => {
    await mkdir(join(dir, 'staged'));
    await encodeDisk('vmdk', memoryDiskImage(disk), join(dir, 'staged', '.disk.vmdk.tskit-tmp-123-abcd'), {epoch: 1_600_000_000, name: 'disk.vmdk'});
    const staged = await readFile(join(dir, 'staged', '.disk.vmdk.tskit-tmp-123-abcd'));
    expect(parseStreamVmdk(staged).descriptor).toContain(`RW ${size / 512} SPARSE "disk.vmdk"`);
    expect(staged.equals(vmdk)).toBe(true);
  });
});
