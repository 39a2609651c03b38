// Attacks on the disk readers, mounted through the one entry point (openDisk) the way a
// hostile file would reach it: headers claiming absurd sizes and billions of table entries
// (in sparse files that cost nothing to make), offsets past the end of the file, tables that
// point into themselves, cluster chains that loop. Each image is opened, read and probed in a
// process of its own (test/support/hostile-open.ts) so time and peak memory are measured from
// outside: every attack must end in one line naming the structure and byte offset, within
// RSS_LIMIT_MIB and TIME_LIMIT_MS. Before the readers read tables in pieces and held headers
// to qemu's limits, these took Node down (an assertion abort, rc 134) or allocated gigabytes,
// so the limits cannot pass by accident.
import {execFileSync, spawnSync} from 'node:child_process';
import {mkdtempSync} from 'node:fs';
import {open, readFile, rm, truncate, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {gzipSync} from 'node:zlib';
import {afterAll, describe, expect, it} from 'vitest';
import {crc32cWithZeroField} from '../../../src/formats/crc32c.ts';
import {oldGnuHeader} from '../../../src/formats/gcp-tar.ts';
import {onesComplementSum} from '../../../src/formats/vhd.ts';
import {VHDX_GUIDS} from '../../../src/formats/vhdx.ts';
import {NODE, ROOT} from '../../support/cli.ts';

/** Peak RSS allowed for opening, reading and probing one hostile image (Node itself is about 60 MiB). */
const RSS_LIMIT_MIB = 160;
const TIME_LIMIT_MS = 10_000;
const KiB = 1024;
const MiB = 1024 * KiB;
const dir = mkdtempSync(join(tmpdir(), 'tskit-hostile-'));
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

interface Outcome {
  ok: boolean;
  tskit?: boolean;
  message?: string;
  ms: number;
  maxRssMiB: number;
  stored?: number;
  size?: number;
  boot?: string | null;
  arch?: string | null;
}

function openHostile(path: string, format?: string): Outcome {
  const ran = spawnSync(NODE, [join(ROOT, 'test/support/hostile-open.ts'), path, ...(format ? [format] : [])], {encoding: 'utf8', timeout: 60_000});
  expect(ran.status, `the reader process died (${ran.signal ?? ran.status}): ${ran.stderr.slice(-2000)}`).toBe(0);
  const outcome = JSON.parse(ran.stdout.trim().split('\n').at(-1)!) as Outcome;
  expect(outcome.maxRssMiB, `peak RSS for ${path}`).toBeLessThan(RSS_LIMIT_MIB);
  expect(outcome.ms, `time for ${path}`).toBeLessThan(TIME_LIMIT_MS);
  return outcome;
}

/** The attack must be refused: one line, a TskitError, matching `pattern`. */
function refused(path: string, pattern: RegExp, format?: string): void {
  const outcome = openHostile(path, format);
  expect(outcome.ok, `${path} was accepted`).toBe(false);
  expect(outcome.tskit, outcome.message).toBe(true);
  expect(outcome.message).not.toContain('\n');
  expect(outcome.message).toMatch(pattern);
}

async function patch(path: string, at: number, bytes: Buffer): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.write(bytes, 0, bytes.length, at);
  } finally {
    await file.close();
  }
}

const u32be = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u64be = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const u64le = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

function qemuCreate(name: string, format: string, size: string, options: string[] = []): string {
  const path = join(dir, name);
  execFileSync('qemu-img', ['create', '-q', '-f', format, ...options, path, size]);
  return path;
}

describe('qcow2', () => {
  it('an L1 table claiming 4 billion entries (32 GiB) is refused by qemu\'s 32 MiB limit', async () => {
    const path = qemuCreate('l1-huge.qcow2', 'qcow2', '1G');
    await patch(path, 24, u64be(2n ** 52n)); // a 4 PiB disk, so the entries are "needed"
    await patch(path, 36, u32be(0xffff_ffff));
    await truncate(path, 2 ** 40); // a sparse terabyte: the table's bytes "exist"
    refused(path, /the L1 table of 4294967295 entries \(header byte 36\) is 32\.0 GiB, beyond qemu's limit of 32 MiB/);
  });

  it('a virtual size of 2^63 bytes is refused', async () => {
    const path = qemuCreate('size-huge.qcow2', 'qcow2', '1G');
    await patch(path, 24, u64be(2n ** 63n));
    refused(path, /the virtual size 9223372036854775808 \(header byte 24\) is beyond 4 PiB/);
  });

  it('an L1 table past the end of the file', async () => {
    const path = qemuCreate('l1-past.qcow2', 'qcow2', '1G');
    await patch(path, 40, u64be(2n ** 40n));
    refused(path, /L1 table at byte 1099511627776 \(16 bytes\) lies past the end of the file \(\d+ bytes\)/);
  });

  it('an L1 entry pointing into the L1 table itself (a loop)', async () => {
    const path = qemuCreate('l1-loop.qcow2', 'qcow2', '1G');
    const header = await readFile(path);
    const l1Offset = header.readBigUInt64BE(40);
    await patch(path, Number(l1Offset), u64be(l1Offset | (1n << 63n)));
    refused(path, new RegExp(`L1 entry 0 \\(byte ${l1Offset}\\) points at byte ${l1Offset}, inside the L1 table itself`));
  });

  it('an L2 table past the end of the file', async () => {
    const path = qemuCreate('l2-past.qcow2', 'qcow2', '1G');
    const l1Offset = Number((await readFile(path)).readBigUInt64BE(40));
    await patch(path, l1Offset, u64be(2n ** 40n));
    refused(path, new RegExp(`L2 table 0 \\(L1 entry at byte ${l1Offset}\\) at byte 1099511627776 \\(65536 bytes\\) lies past the end of the file`));
  });

  it('cluster_bits 30 is refused', async () => {
    const path = qemuCreate('bits.qcow2', 'qcow2', '1M');
    await patch(path, 20, u32be(30));
    refused(path, /cluster_bits 30 in the header \(byte 20\) is outside 9-21/);
  });

  it('the largest L1 qemu allows (4M entries, 32 MiB) in a sparse file: read in pieces, flat memory', async () => {
    const path = qemuCreate('l1-max.qcow2', 'qcow2', '1G');
    await patch(path, 24, u64be(2n ** 51n)); // 2 PiB: exactly 4M entries of 512 MiB
    await patch(path, 36, u32be(4 * 1024 * 1024));
    await truncate(path, 64 * MiB);
    const outcome = openHostile(path);
    expect(outcome).toMatchObject({ok: true, size: 2 ** 51, stored: 0});
  });
});

/** Rewrites a dynamic VHD's footer (and its copy) or header field, fixing the checksum. */
async function patchVhd(path: string, where: 'footer' | 'header', at: number, bytes: Buffer): Promise<void> {
  const file = await readFile(path);
  const footerAt = file.length - 512;
  if (where === 'footer') {
    const footer = Buffer.from(file.subarray(footerAt));
    bytes.copy(footer, at);
    footer.writeUInt32BE(onesComplementSum(footer, 64), 64);
    await patch(path, footerAt, footer);
    await patch(path, 0, footer);
  } else {
    const headerAt = Number(file.readBigUInt64BE(footerAt + 16));
    const header = Buffer.from(file.subarray(headerAt, headerAt + 1024));
    bytes.copy(header, at);
    header.writeUInt32BE(onesComplementSum(header, 36), 36);
    await patch(path, headerAt, header);
  }
}

describe('dynamic VHD', () => {
  const dynamic = (name: string) => qemuCreate(name, 'vpc', '1G', ['-o', 'subformat=dynamic,force_size=on']);

  it('a block table claiming 4 billion entries is refused by qemu\'s limit', async () => {
    const path = dynamic('bat-huge.vhd');
    await patchVhd(path, 'header', 28, u32be(0xffff_ffff));
    refused(path, /the block allocation table claims 4294967295 entries \(header byte 28, at byte \d+\), beyond qemu's limit of 536870911/);
  });

  it('a block table past the end of the file', async () => {
    const path = dynamic('bat-past.vhd');
    await patchVhd(path, 'header', 16, u64be(2n ** 50n));
    refused(path, /the block allocation table offset 1125899906842624 \(header byte 16, at byte \d+\) lies past the end of the file/);
  });

  it('a dynamic header past the end of the file', async () => {
    const path = dynamic('header-past.vhd');
    await patchVhd(path, 'footer', 16, u64be(2n ** 60n));
    refused(path, /the dynamic disk header offset 1152921504606846976 \(footer byte 16\) lies past the end of the file/);
  });

  it('a current size of 2^62 bytes is refused', async () => {
    const path = dynamic('size-huge.vhd');
    await patchVhd(path, 'footer', 48, u64be(2n ** 62n));
    refused(path, /the current size 4611686018427387904 \(footer byte 48, at byte \d+\) is beyond 4 PiB/);
  });

  it('a block pointing past the data area', async () => {
    const path = dynamic('block-past.vhd');
    const file = await readFile(path);
    const batAt = Number(file.readBigUInt64BE(512 + 16));
    await patch(path, batAt, u32be(0x7fff_0000));
    refused(path, new RegExp(`block 0 \\(table entry at byte ${batAt}\\) at byte \\d+ runs past the data area, which ends at byte \\d+; the image is truncated`));
  });
});

/** The VHDX region table at 192 KiB (the copy at 256 KiB is made to fail its CRC, so this one counts). */
async function patchVhdxRegion(path: string, entryField: number, bytes: Buffer, guid: Buffer): Promise<void> {
  const file = await readFile(path);
  const table = Buffer.from(file.subarray(192 * KiB, 256 * KiB));
  const count = table.readUInt32LE(8);
  for (let i = 0; i < count; i++) {
    if (!table.subarray(16 + i * 32, 32 + i * 32).equals(guid)) continue;
    bytes.copy(table, 16 + i * 32 + entryField);
  }
  table.writeUInt32LE(crc32cWithZeroField(table, 4), 4);
  await patch(path, 192 * KiB, table);
  await patch(path, 256 * KiB, Buffer.alloc(64 * KiB)); // no valid copy to fall back on
}

describe('VHDX', () => {
  it('a BAT region past the end of the file', async () => {
    const path = qemuCreate('bat-past.vhdx', 'vhdx', '1G');
    await patchVhdxRegion(path, 16, u64le(2n ** 40n), VHDX_GUIDS.bat);
    refused(path, /region table entry \d \(at byte \d+\) places a region at byte 1099511627776 with \d+ bytes, past the end of the file/);
  });

  it('a virtual size of 2^62 bytes is refused by the format\'s 64 TiB limit', async () => {
    const path = qemuCreate('size-huge.vhdx', 'vhdx', '1G');
    const file = await readFile(path);
    const table = file.subarray(192 * KiB, 256 * KiB);
    let metadataAt = 0;
    for (let i = 0; i < table.readUInt32LE(8); i++) if (table.subarray(16 + i * 32, 32 + i * 32).equals(VHDX_GUIDS.metadata)) metadataAt = Number(table.readBigUInt64LE(16 + i * 32 + 16));
    const meta = file.subarray(metadataAt);
    for (let i = 0; i < meta.readUInt16LE(10); i++) {
      if (meta.subarray(32 + i * 32, 48 + i * 32).equals(VHDX_GUIDS.virtualDiskSize)) await patch(path, metadataAt + meta.readUInt32LE(32 + i * 32 + 16), u64le(2n ** 62n));
    }
    refused(path, /the virtual disk size 4611686018427387904 \(metadata item virtual disk size\) is beyond the format's limit of 64 TiB/);
  });
});

describe('VMDK', () => {
  const sparse = (name: string) => qemuCreate(name, 'vmdk', '1G', ['-o', 'subformat=monolithicSparse']);

  it('65536 entries per grain table is refused by qemu\'s limit of 512', async () => {
    const path = sparse('gtes.vmdk');
    await patch(path, 44, u32le(65536));
    refused(path, /65536 grain table entries per table \(header byte 44, at byte 44\) is outside 1-512, qemu's limit/);
  });

  it('a capacity of 2^60 sectors is refused', async () => {
    const path = sparse('capacity.vmdk');
    await patch(path, 12, u64le(2n ** 60n));
    refused(path, /the capacity of 1152921504606846976 sectors \(header byte 12, at byte 12\) is beyond 4 PiB/);
  });

  it('a grain directory past the end of the file', async () => {
    const path = sparse('gd-past.vmdk');
    await patch(path, 56, u64le(2n ** 40n));
    refused(path, /the grain directory at sector 1099511627776 \(header byte 56, at byte 56\) lies past the end of the file/);
  });

  it('a grain table past the end of the file', async () => {
    const path = sparse('gt-past.vmdk');
    const gdAt = Number((await readFile(path)).readBigUInt64LE(56)) * 512;
    await patch(path, gdAt, u32le(0x7fff_ffff));
    refused(path, new RegExp(`grain table 0 \\(directory entry at byte ${gdAt}\\) at byte \\d+ \\(2048 bytes\\) lies past the end of the file`));
  });
});

describe('GCE tarball', () => {
  it('a disk.raw of 1 PiB (a base-256 size field) is refused by GCE\'s 64 TiB, and one of 2^60 bytes as no disk size', async () => {
    const path = join(dir, 'huge.tar.gz');
    await writeFile(path, gzipSync(Buffer.concat([oldGnuHeader('disk.raw', 2 ** 50, 0), Buffer.alloc(4096)])));
    refused(path, /disk\.raw is 1125899906842624 bytes, beyond GCE's largest disk \(64 TiB\)/);
    await writeFile(path, gzipSync(Buffer.concat([oldGnuHeader('disk.raw', 2 ** 60, 0), Buffer.alloc(4096)])));
    refused(path, /the size of the tar record at inflated byte 0 is 1152921504606846976, beyond any disk size/);
  });

  it('a PAX header claiming 1.5 GB is refused before it is read', async () => {
    const pax = oldGnuHeader('PaxHeaders/disk.raw', 1_500_000_000, 0);
    pax[156] = 'x'.charCodeAt(0);
    pax.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of pax) sum += b;
    pax.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const path = join(dir, 'pax.tar.gz');
    await writeFile(path, gzipSync(Buffer.concat([pax, Buffer.alloc(4096)])));
    refused(path, /the PAX header at inflated byte 0 claims 1500000000 bytes \(at most 1048576\)/);
  });

  it('a damaged gzip stream', async () => {
    const good = gzipSync(Buffer.concat([oldGnuHeader('disk.raw', MiB, 0), Buffer.alloc(MiB, 1)]));
    good.fill(0x55, 40, 200);
    const path = join(dir, 'damaged.tar.gz');
    await writeFile(path, good);
    refused(path, /the gzip stream is damaged \(.*\) after \d+ inflated bytes|the tar header at inflated byte 0 has a wrong checksum/);
  });
});

describe('the boot probe', () => {
  it('a FAT32 EFI partition whose directories point at themselves and whose cluster chain loops: a few reads, then no architecture', async () => {
    const disk = Buffer.alloc(48 * MiB);
    // MBR: one EFI system partition at 1 MiB
    disk[446 + 4] = 0xef;
    disk.writeUInt32LE(2048, 446 + 8);
    disk.writeUInt32LE(90_000, 446 + 12);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    const bpb = disk.subarray(MiB, MiB + 512);
    bpb.writeUInt16LE(512, 11);
    bpb[13] = 1; // a sector per cluster
    bpb.writeUInt16LE(32, 14); // reserved sectors
    bpb[16] = 1; // one FAT
    bpb.writeUInt32LE(90_000, 32);
    bpb.writeUInt32LE(704, 36); // FAT sectors
    bpb.writeUInt32LE(2, 44); // root directory cluster
    bpb[510] = 0x55;
    bpb[511] = 0xaa;
    const fat = MiB + 32 * 512;
    disk.writeUInt32LE(2, fat + 2 * 4); // cluster 2 -> cluster 2: a loop
    const root = MiB + (32 + 704) * 512;
    for (const [i, name, attr] of [[0, 'EFI        ', 0x10], [1, 'BOOT       ', 0x10], [2, 'BOOTX64 EFI', 0x20]] as const) {
      disk.write(name, root + i * 32, 'latin1');
      disk[root + i * 32 + 11] = attr;
      disk.writeUInt16LE(2, root + i * 32 + 26); // every entry is cluster 2 again
    }
    const path = join(dir, 'fat-loop.img');
    await writeFile(path, disk);
    const outcome = openHostile(path);
    expect(outcome).toMatchObject({ok: true, boot: 'uefi', arch: null});
  });

  it('a GPT claiming 4 billion entries of 4 KiB far past the end: bounded', async () => {
    const disk = Buffer.alloc(MiB);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk.write('EFI PART', 512, 'latin1');
    disk.writeBigUInt64LE(2n ** 50n, 512 + 72);
    disk.writeUInt32LE(0xffff_ffff, 512 + 80);
    disk.writeUInt32LE(4096, 512 + 84);
    const path = join(dir, 'gpt-huge.img');
    await writeFile(path, disk);
    expect(openHostile(path)).toMatchObject({ok: true, boot: null, arch: null});
  });
});

describe('streamOptimized VMDK from qemu-img', () => {
  it('a stream whose incompressible last grain overruns where the end-of-stream marker would go is read, byte-exact', async () => {
    const raw = join(dir, 'random.raw');
    execFileSync('sh', ['-c', `head -c ${8 * MiB} /dev/urandom > "${raw}"`]);
    const vmdk = join(dir, 'random-stream.vmdk');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk]);
    const outcome = openHostile(vmdk);
    expect(outcome).toMatchObject({ok: true, size: 8 * MiB, stored: 8 * MiB});
    const back = join(dir, 'random-back.raw');
    execFileSync(NODE, [join(ROOT, 'bin/run.js'), 'convert', vmdk, back, '-f', 'raw']);
    expect((await readFile(back)).equals(await readFile(raw))).toBe(true);
  });
});
