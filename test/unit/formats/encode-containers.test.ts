// Every container encoder against the real reader of its format: qemu-img compare says the
// output holds exactly the disk, qemu-img info names the format and virtual size, and the
// structures each format's spec fixes are checked byte by byte (VHD footer and geometry,
// dynamic VHD table, VHDX size, qcow2 refcounts). Same disk in, same bytes out.
import {createHash} from 'node:crypto';
import {mkdir, open, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {mkdtempSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {nonZeroBlocks} from '../../../src/formats/blocks.ts';
import {rawDiskImage} from '../../../src/formats/decode-raw.ts';
import {encodeDisk, roundSize, sizeMultiple, type ContainerFormat} from '../../../src/formats/encode.ts';
import {chsGeometry, onesComplementSum} from '../../../src/formats/vhd.ts';
import {QEMU_DRIVER, memoryDiskImage, mixedDisk, qemuCompare, qemuImg, qemuInfo} from '../../support/disk-images.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const dir = mkdtempSync(join(tmpdir(), 'tskit-test-encode-'));
const odd = 13 * MiB + 3 * 512; // a multiple of no format's block
const whole = 13 * MiB; // whole MiB, for VHD; not a whole number of 2 MiB blocks
const disks: Record<string, {path: string; bytes: Buffer}> = {};

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const nonZeroBlockCount = (disk: Buffer, block: number) => {
  let n = 0;
  for (let at = 0; at < disk.length; at += block) if (disk.subarray(at, at + block).some((b) => b !== 0)) n++;
  return n;
};

beforeAll(async () => {
  for (const [name, size] of [['odd', odd], ['whole', whole]] as const) {
    const bytes = mixedDisk(size, name);
    const path = join(dir, `${name}-source.img`); // not a name any output takes
    await writeFile(path, bytes);
    disks[name] = {path, bytes};
  }
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

const cases: Array<[ContainerFormat, 'odd' | 'whole']> = [
  ['raw', 'odd'],
  ['qcow2', 'odd'],
  ['vmdk', 'odd'],
  ['vhdx', 'odd'],
  ['vhd', 'whole'],
  ['dynamic-vhd', 'whole'],
];

describe('container encoders, checked by qemu-img', () => {
  it.each(cases)('%s holds exactly the disk, and the same disk gives the same bytes', async (format, which) => {
    const disk = disks[which]!;
    const out = join(dir, `${which}.${format}`);
    const encoded = await encodeDisk(format, memoryDiskImage(disk.bytes), out);
    expect(qemuCompare(disk.path, out, QEMU_DRIVER[format]!)).toEqual({identical: true, message: 'Images are identical.'});
    const info = qemuInfo(out, QEMU_DRIVER[format]);
    expect(info.format).toBe(QEMU_DRIVER[format]);
    expect(info['virtual-size']).toBe(disk.bytes.length);
    expect(encoded).toEqual({size: (await stat(out)).size, sha256: await sha256(out)});

    // the same disk read from a file, in other extents, encodes to the same bytes
    const againDir = join(dir, 'again');
    await mkdir(againDir, {recursive: true});
    const again = join(againDir, `${which}.${format}`); // the same name: the VMDK descriptor holds it
    const file = await open(disk.path, 'r');
    try {
      const second = await encodeDisk(format, await rawDiskImage(file, disk.path), again);
      expect(second.sha256).toBe(encoded.sha256);
    } finally {
      await file.close();
    }
    expect((await readdir(dir)).filter((f) => f.includes('tskit-tmp'))).toEqual([]);
  });

  it('raw leaves the zero blocks as holes', async () => {
    const out = join(dir, 'sparse.raw');
    await encodeDisk('raw', memoryDiskImage(disks.odd!.bytes), out);
    const s = await stat(out);
    expect(s.size).toBe(odd);
    expect(s.blocks * 512).toBeLessThan(odd / 2);
  });

  it('aws is a raw disk of whole GiB', async () => {
    expect(sizeMultiple('aws')).toBe(1024 * MiB);
    const image = {size: roundSize('aws', odd), extents: () => memoryDiskImage(disks.odd!.bytes).extents()};
    const out = join(dir, 'disk-aws.raw');
    await encodeDisk('aws', image, out);
    expect((await stat(out)).size).toBe(1024 * MiB);
    expect(qemuCompare(disks.odd!.path, out, 'raw').identical).toBe(true);
    await rm(out);
  });

  it('qcow2 passes qemu-img check and allocates only the non-zero clusters', async () => {
    const out = join(dir, 'odd.qcow2');
    const check = JSON.parse(qemuImg(['check', '--output=json', out])) as Record<string, number>;
    expect(check).toMatchObject({'check-errors': 0, 'allocated-clusters': nonZeroBlockCount(disks.odd!.bytes, 64 * KiB)});
    expect(check.leaks ?? 0).toBe(0);
    expect(check.corruptions ?? 0).toBe(0);
    expect(qemuInfo(out)['format-specific']?.data).toMatchObject({compat: '1.1', 'refcount-bits': 16});
  });

  it('vhdx passes qemu-img check and stores only the non-zero 1 MiB blocks', async () => {
    const out = join(dir, 'odd.vhdx');
    expect(qemuImg(['check', out])).toMatch(/No errors were found/);
    const blocks = Math.ceil(odd / MiB);
    const batBytes = Math.ceil((blocks * 8) / MiB) * MiB;
    expect((await stat(out)).size).toBe(3 * MiB + batBytes + nonZeroBlockCount(disks.odd!.bytes, MiB) * MiB);
  });
});

describe('fixed VHD (Azure page blob rules)', () => {
  it('is the disk plus a 512-byte footer whose fields follow the VHD spec', async () => {
    const out = join(dir, 'whole.vhd');
    const file = await readFile(out);
    expect(file.length).toBe(whole + 512);
    expect(whole % MiB).toBe(0);
    const footer = file.subarray(whole);
    expect(file.subarray(0, whole).equals(disks.whole!.bytes)).toBe(true);
    expect(footer.toString('latin1', 0, 8)).toBe('conectix');
    expect(footer.readUInt32BE(8)).toBe(2);
    expect(footer.readUInt32BE(12)).toBe(0x00010000);
    expect(footer.readBigUInt64BE(16)).toBe(0xffffffffffffffffn);
    expect(footer.toString('latin1', 28, 32)).toBe('win ');
    expect(footer.readBigUInt64BE(40)).toBe(BigInt(whole));
    expect(footer.readBigUInt64BE(48)).toBe(BigInt(whole));
    expect(footer.readUInt32BE(60)).toBe(2);
    expect(footer.readUInt32BE(64)).toBe(onesComplementSum(footer));
    expect(footer[84]).toBe(0);
    expect(footer.subarray(68, 84).equals(Buffer.alloc(16))).toBe(false);
  });

  it('has the CHS geometry of the VHD spec, yet readers take the exact size', () => {
    // worked by hand from the algorithm in the spec's appendix (qemu-img cannot be the
    // reference: with force_size it writes the maximum geometry as a flag instead)
    expect(chsGeometry(13 * MiB)).toEqual({cylinders: 391, heads: 4, sectorsPerTrack: 17});
    expect(chsGeometry(64 * MiB)).toEqual({cylinders: 963, heads: 8, sectorsPerTrack: 17});
    expect(chsGeometry(1000 * MiB)).toEqual({cylinders: 2031, heads: 16, sectorsPerTrack: 63});
    expect(chsGeometry(127 * 1024 * MiB)).toEqual({cylinders: 65278, heads: 16, sectorsPerTrack: 255});
    expect(chsGeometry(4 * 1024 * 1024 * MiB)).toEqual({cylinders: 65535, heads: 16, sectorsPerTrack: 255});
    // 391 x 4 x 17 sectors is less than 13 MiB: qemu-img reported the exact size above
    // only because the footer names Hyper-V as its creator ("current size" is the size)
    expect(391 * 4 * 17 * 512).toBeLessThan(whole);
  });

  it('takes its time from SOURCE_DATE_EPOCH and its id from the content', async () => {
    const a = join(dir, 'epoch-a.vhd');
    const b = join(dir, 'epoch-b.vhd');
    await encodeDisk('vhd', memoryDiskImage(disks.whole!.bytes), a, {epoch: 1_700_000_000});
    await encodeDisk('vhd', memoryDiskImage(disks.whole!.bytes), b, {epoch: 1_700_000_001});
    const fa = (await readFile(a)).subarray(whole);
    const fb = (await readFile(b)).subarray(whole);
    expect(fa.readUInt32BE(24)).toBe(1_700_000_000 - 946_684_800);
    expect(fb.readUInt32BE(24)).toBe(1_700_000_001 - 946_684_800);
    const changed = Buffer.from(disks.whole!.bytes);
    changed[5 * MiB] = 1;
    const c = join(dir, 'epoch-c.vhd');
    await encodeDisk('vhd', memoryDiskImage(changed), c, {epoch: 1_700_000_000});
    const fc = (await readFile(c)).subarray(whole);
    expect(fc.subarray(68, 84).equals(fa.subarray(68, 84))).toBe(false);
    await Promise.all([a, b, c].map((p) => rm(p)));
  });
});

describe('dynamic VHD', () => {
  it('has a footer copy, a checksummed header and a table of only the non-zero 2 MiB blocks', async () => {
    const file = await readFile(join(dir, 'whole.dynamic-vhd'));
    const footer = file.subarray(file.length - 512);
    expect(file.subarray(0, 512).equals(footer)).toBe(true);
    expect(footer.readUInt32BE(60)).toBe(3);
    expect(footer.readBigUInt64BE(16)).toBe(512n);
    const header = file.subarray(512, 1536);
    expect(header.toString('latin1', 0, 8)).toBe('cxsparse');
    expect(header.readUInt32BE(36)).toBe(onesComplementSum(header, 36));
    const entries = header.readUInt32BE(28);
    expect(entries).toBe(Math.ceil(whole / (2 * MiB)));
    expect(header.readUInt32BE(32)).toBe(2 * MiB);
    const batAt = Number(header.readBigUInt64BE(16));
    const allocated = Array.from({length: entries}, (_, i) => file.readUInt32BE(batAt + i * 4)).filter((e) => e !== 0xffffffff);
    const stored = nonZeroBlockCount(disks.whole!.bytes, 2 * MiB);
    expect(allocated.length).toBe(stored);
    expect(file.length).toBe(512 + 1024 + Math.ceil((entries * 4) / 512) * 512 + stored * (512 + 2 * MiB) + 512);
  });
});

describe('encodeDisk', () => {
  it('refuses sizes the target does not take', async () => {
    const image = memoryDiskImage(disks.odd!.bytes);
    await expect(encodeDisk('vhd', image, join(dir, 'x.vhd'))).rejects.toThrow(/whole number of MiB; this one is 13633024 bytes/);
    await expect(encodeDisk('gcp', image, join(dir, 'x.tar.gz'))).rejects.toThrow(/whole number of GiB/);
  });

  it('leaves nothing behind when aborted', async () => {
    const controller = new AbortController();
    const out = join(dir, 'aborted.vmdk');
    const done = encodeDisk('vmdk', memoryDiskImage(disks.odd!.bytes), out, {
      signal: controller.signal,
      progress: () => controller.abort(new Error('stop')),
    });
    controller.abort(new Error('stop'));
    await expect(done).rejects.toThrow('stop');
    expect((await readdir(dir)).filter((f) => f.startsWith('.aborted') || f === 'aborted.vmdk')).toEqual([]);
  });
});

describe('block re-chunking', () => {
  it('yields every non-zero block exactly once, whatever the extents', async () => {
    const bytes = disks.odd!.bytes;
    for (const [maxExtent, block] of [[512, 64 * KiB], [7 * 512, 64 * KiB], [3 * MiB, 2 * MiB], [100 * 512, MiB]] as const) {
      const seen: number[] = [];
      for await (const b of nonZeroBlocks(memoryDiskImage(bytes, maxExtent), block)) {
        seen.push(b.index);
        const expected = Buffer.alloc(block);
        bytes.copy(expected, 0, b.index * block, Math.min(bytes.length, (b.index + 1) * block));
        expect(b.data.equals(expected)).toBe(true);
      }
      const expected = [];
      for (let i = 0; i * block < bytes.length; i++) if (bytes.subarray(i * block, (i + 1) * block).some((x) => x !== 0)) expected.push(i);
      expect(seen).toEqual(expected);
    }
  });
});
