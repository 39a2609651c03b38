// The readers `tskit convert` uses, on images qemu-img made (every subformat it writes), and
// on damaged ones: each must read back exactly the disk, or fail naming the structure and
// the byte offset.
import {execFileSync} from 'node:child_process';
import {constants, mkdtempSync} from 'node:fs';
import {open, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {crc32c} from '../../../src/formats/crc32c.ts';
import {openDisk, sniffDiskFormat} from '../../../src/formats/decode.ts';
import {openDirect} from '../../../src/formats/decode-raw.ts';
import type {DiskImage} from '../../../src/formats/disk.ts';
import {encodeDisk} from '../../../src/formats/encode.ts';
import {mixedDisk, qemuImg} from '../../support/disk-images.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'tskit-test-readers-'));
const size = 11 * MiB + 5 * 512;
let disk: Buffer;
const raw = join(dir, 'disk.raw');

/** The whole disk a DiskImage describes, zeros included. */
async function contents(image: DiskImage): Promise<Buffer> {
  const out = Buffer.alloc(image.size);
  let last = 0;
  for await (const extent of image.extents()) {
    expect(extent.offset % 512).toBe(0);
    expect(extent.data.length % 512).toBe(0);
    expect(extent.offset).toBeGreaterThanOrEqual(last);
    extent.data.copy(out, extent.offset);
    last = extent.offset + extent.data.length;
  }
  expect(last).toBeLessThanOrEqual(image.size);
  return out;
}

async function readBack(path: string): Promise<{format: string; bytes: Buffer}> {
  const opened = await openDisk(path);
  try {
    return {format: opened.format, bytes: await contents(opened.image)};
  } finally {
    await opened.close();
  }
}

async function failure(path: string): Promise<string> {
  try {
    const opened = await openDisk(path);
    try {
      await contents(opened.image);
    } finally {
      await opened.close();
    }
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${path} was read without complaint`);
}

async function patch(path: string, at: number, bytes: Buffer): Promise<void> {
  const file = await open(path, 'r+');
  await file.write(bytes, 0, bytes.length, at);
  await file.close();
}

const convert = (format: string, out: string, options: string[] = []) => qemuImg(['convert', '-q', '-f', 'raw', '-O', format, ...options, raw, join(dir, out)]);

beforeAll(async () => {
  disk = mixedDisk(size, 'readers');
  await writeFile(raw, disk);
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('readers, on images qemu-img wrote', () => {
  const variants: Array<[string, string, string, string[]]> = [
    ['qcow2 v3', 'qcow2', 'v3.qcow2', []],
    ['qcow2 v2 (compat 0.10)', 'qcow2', 'v2.qcow2', ['-o', 'compat=0.10']],
    ['qcow2 compressed clusters', 'qcow2', 'compressed.qcow2', ['-c']],
    ['qcow2 4 KiB clusters', 'qcow2', 'small-clusters.qcow2', ['-o', 'cluster_size=4096']],
    ['vmdk monolithicSparse', 'vmdk', 'sparse.vmdk', []],
    ['vmdk streamOptimized', 'vmdk', 'stream.vmdk', ['-o', 'subformat=streamOptimized']],
    ['vhdx', 'vhdx', 'disk.vhdx', []],
    ['vhdx 8 MiB blocks, no zero state', 'vhdx', 'big-blocks.vhdx', ['-o', 'block_size=8M,block_state_zero=off']],
    ['vhd dynamic', 'vpc', 'dynamic.vhd', ['-o', 'subformat=dynamic']],
    ['vhd fixed', 'vpc', 'fixed.vhd', ['-o', 'subformat=fixed,force_size=on']],
  ];
  it.each(variants)('%s reads back exactly the disk', async (_name, format, file, options) => {
    convert(format, file, options);
    const back = await readBack(join(dir, file));
    expect(back.format).toBe(format === 'vpc' ? 'vhd' : format);
    // qemu's own dynamic VHD rounds the size up to its CHS geometry: the rest must be zeros
    expect(back.bytes.subarray(0, size).equals(disk)).toBe(true);
    expect(back.bytes.subarray(size).every((b) => b === 0)).toBe(true);
  });

  it('reads qcow2 zero clusters (allocated or not) as zeros', async () => {
    const path = join(dir, 'zero.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', path, '4M']);
    execFileSync('qemu-io', ['-c', 'write -P 0x55 0 192k', '-c', 'write -z 64k 64k', '-c', 'write -z -u 128k 64k', path]);
    const back = await readBack(path);
    expect(back.bytes.length).toBe(4 * MiB);
    expect(back.bytes.subarray(0, 64 * 1024).every((b) => b === 0x55)).toBe(true);
    expect(back.bytes.subarray(64 * 1024).every((b) => b === 0)).toBe(true);
  });

  it('reads a mostly-holes raw file directly (O_DIRECT) where the file system allows, with the same bytes', async () => {
    const path = join(dir, 'holes.img');
    const holesSize = 64 * MiB + 3 * 512; // a tail no 4 KiB block ends on
    const file = await open(path, 'w');
    const pieces: Array<[number, Buffer]> = [[0, disk.subarray(0, 3 * 512)], [5 * MiB + 512, disk.subarray(MiB, 3 * MiB)], [40 * MiB - 4096, disk.subarray(0, 8192)], [holesSize - 700, disk.subarray(MiB, MiB + 700)]];
    for (const [at, bytes] of pieces) await file.write(bytes, 0, bytes.length, at);
    await file.truncate(holesSize);
    const direct = await openDirect(path, file);
    let directWorks = true;
    await open(path, constants.O_RDONLY | constants.O_DIRECT).then((h) => h.close(), () => (directWorks = false));
    expect(direct !== undefined).toBe(directWorks); // mostly holes: direct whenever the file system can
    await direct?.close();
    await file.close();
    const expected = Buffer.alloc(Math.ceil(holesSize / 512) * 512);
    for (const [at, bytes] of pieces) bytes.copy(expected, at);
    const opened = await openDisk(path, {reuseBuffers: true});
    try {
      expect((await contents(opened.image)).equals(expected)).toBe(true);
      expect((await contents(opened.image)).equals(expected)).toBe(true); // the second pass too
    } finally {
      await opened.close();
    }
  });

  it('takes a file without magic as raw, whatever its length', async () => {
    const path = join(dir, 'odd.img');
    await writeFile(path, disk.subarray(0, 1000 * 1000 + 3));
    const back = await readBack(path);
    expect(back.format).toBe('raw');
    expect(back.bytes.length).toBe(Math.ceil((1000 * 1000 + 3) / 512) * 512);
    expect(back.bytes.subarray(0, 1000 * 1000 + 3).equals(disk.subarray(0, 1000 * 1000 + 3))).toBe(true);
    expect(sniffDiskFormat(Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(0))).toBe('qcow2');
  });
});

describe('readers, on damaged images', () => {
  it('qcow2 cut short: names the cluster and where the file ends', async () => {
    const path = join(dir, 'cut.qcow2');
    const whole = await readFile(join(dir, 'v3.qcow2'));
    await writeFile(path, whole.subarray(0, whole.length - 3 * 65536));
    expect(await failure(path)).toMatch(/cut\.qcow2: not a valid qcow2 image: cluster at virtual offset \d+ \(L2 table 0 entry \d+, byte \d+\) at byte \d+ \(\d+ bytes\) lies past the end of the file \(\d+ bytes\)/);
  });

  it('qcow2 with a misaligned L2 pointer, or a backing file', async () => {
    const path = join(dir, 'bad-l1.qcow2');
    const whole = await readFile(join(dir, 'v3.qcow2'));
    const l1 = Number(whole.readBigUInt64BE(40));
    const bad = Buffer.from(whole);
    bad.writeBigUInt64BE(whole.readBigUInt64BE(l1) + 512n, l1);
    await writeFile(path, bad);
    expect(await failure(path)).toMatch(/L1 entry 0 \(byte \d+\) points at \d+, not a cluster boundary/);
    const overlay = join(dir, 'overlay.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', join(dir, 'v3.qcow2'), '-F', 'qcow2', overlay]);
    expect(await failure(overlay)).toMatch(/it has a backing file \(.*v3\.qcow2\); flatten the chain first/);
  });

  it('VHD with a damaged footer checksum, and a dynamic VHD cut short', async () => {
    const fixed = join(dir, 'bad-sum.vhd');
    const whole = await readFile(join(dir, 'fixed.vhd'));
    const bad = Buffer.from(whole);
    bad.writeUInt8(bad.readUInt8(bad.length - 512 + 48) ^ 1, bad.length - 512 + 48);
    await writeFile(fixed, bad);
    expect(await failure(fixed)).toMatch(/footer at byte \d+ has checksum 0x[0-9a-f]+, its bytes sum to 0x[0-9a-f]+: it is damaged/);
    const cut = join(dir, 'cut.vhd');
    const dynamic = await readFile(join(dir, 'dynamic.vhd'));
    await writeFile(cut, dynamic.subarray(0, dynamic.length - 3 * MiB));
    expect(await failure(cut)).toMatch(/no footer in the last 512 bytes .* the file is truncated/);
  });

  it('VHDX whose headers are both damaged, or whose log was not replayed', async () => {
    const whole = await readFile(join(dir, 'disk.vhdx'));
    const broken = Buffer.from(whole);
    for (const at of [64 * 1024 + 100, 128 * 1024 + 100]) broken.writeUInt8(broken.readUInt8(at) ^ 1, at);
    await writeFile(join(dir, 'bad-headers.vhdx'), broken);
    expect(await failure(join(dir, 'bad-headers.vhdx'))).toMatch(/header at byte 65536: CRC-32C 0x[0-9a-f]+ does not match its content .*header at byte 131072: CRC-32C/);
    const logged = Buffer.from(whole);
    for (const at of [64 * 1024, 128 * 1024]) {
      logged.fill(7, at + 48, at + 64);
      logged.writeUInt32LE(0, at + 4);
      logged.writeUInt32LE(crc32c(logged.subarray(at, at + 4096)), at + 4);
    }
    await writeFile(join(dir, 'logged.vhdx'), logged);
    expect(await failure(join(dir, 'logged.vhdx'))).toMatch(/its log holds changes not yet written back/);
  });

  it('VMDK stream cut short, a grain that does not inflate, a descriptor-only VMDK', async () => {
    const ours = join(dir, 'ours.vmdk');
    await encodeDisk('vmdk', await (async () => (await openDisk(raw)).image)(), ours);
    const mine = await readFile(ours);
    await writeFile(join(dir, 'cut.vmdk'), mine.subarray(0, mine.length - 4096));
    expect(await failure(join(dir, 'cut.vmdk'))).toMatch(/no footer marker, footer and end-of-stream marker in the last 1536 bytes .* the stream is truncated/);
    const whole = await readFile(join(dir, 'stream.vmdk')); // qemu's: directory in the header
    await writeFile(join(dir, 'cut-qemu.vmdk'), whole.subarray(0, Math.floor(whole.length / 2)));
    // qemu-img's streams may end without an end-of-stream marker (an incompressible last grain
    // overruns it), so a cut one is caught where its tables point past the end
    expect(await failure(join(dir, 'cut-qemu.vmdk'))).toMatch(/grain \d+ \(table \d+ entry \d+, byte \d+\) at byte \d+ \(\d+ bytes\) lies past the end of the file \(\d+ bytes\); the image is truncated/);
    const garbled = join(dir, 'garbled.vmdk');
    await writeFile(garbled, whole);
    const opened = await openDisk(garbled);
    await opened.close();
    // the first grain sits right after the header, descriptor and padding: find its marker
    const header = whole;
    const overhead = Number(header.readBigUInt64LE(64)) * 512;
    await patch(garbled, overhead + 12, Buffer.from('not deflate at all'));
    expect(await failure(garbled)).toMatch(/grain 0 \(table 0 entry 0, byte \d+\) at byte \d+ does not decompress/);
    const descriptor = join(dir, 'flat.vmdk');
    qemuImg(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', descriptor, '1M']);
    expect(await failure(descriptor)).toMatch(/a descriptor whose data lives in other files/);
  });

  it('an empty file, and a missing one', async () => {
    await writeFile(join(dir, 'empty.img'), '');
    expect(await failure(join(dir, 'empty.img'))).toMatch(/empty\.img is empty/);
    expect(await failure(join(dir, 'missing.img'))).toMatch(/cannot open .*missing\.img: ENOENT/);
  });
});
