// Converting a 1 PiB virtual disk (a qcow2 qemu-img made: a few hundred KiB of file) to each
// output format: the format's real maximum is enforced before anything is written, in one
// line that names it and why; a format that holds 1 PiB (qcow2) converts it, and qemu-img
// reads the result. Nothing is left in the output directory by a refusal.
import {execFileSync} from 'node:child_process';
import {mkdtempSync} from 'node:fs';
import {mkdir, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {MAX_SIZES} from '../../../src/formats/encode.ts';
import {ensureBuilt, tskit} from '../../support/cli.ts';
import {qemuImg, qemuInfo} from '../../support/disk-images.ts';

const PiB = 2 ** 50;
const dir = mkdtempSync(join(tmpdir(), 'tskit-convert-limits-'));
const big = join(dir, 'petabyte.qcow2');

beforeAll(async () => {
  await ensureBuilt();
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', big, '1P']);
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

const REFUSED: Record<string, RegExp> = {
  aws: /an aws disk holds at most 64 TiB \(EBS's largest volume .*\); this disk is 1 PiB$/,
  vhd: /a vhd disk holds at most 32 TiB \(the largest fixed VHD Azure takes for a managed disk\); this disk is 1 PiB$/,
  'dynamic-vhd': /a dynamic-vhd disk holds at most 2040 GiB \(the VHD format's limit \(Hyper-V, qemu-img\)\); this disk is 1 PiB$/,
  vhdx: /a vhdx disk holds at most 64 TiB \(the VHDX specification's limit\); this disk is 1 PiB$/,
  vmdk: /a vmdk disk holds at most 62 TiB \(vSphere's largest virtual disk\); this disk is 1 PiB$/,
  gcp: /a gcp disk holds at most 64 TiB \(GCE's largest disk\); this disk is 1 PiB$/,
};

describe('converting a 1 PiB disk', () => {
  for (const [format, message] of Object.entries(REFUSED)) {
    it(`to ${format}: refused up front, one line, nothing written`, async () => {
      const out = join(dir, format);
      await mkdir(out);
      const ran = await tskit(['convert', big, join(out, `disk.${format}`), '-f', format], {timeout: 60_000});
      expect(ran.code).toBe(1);
      const lines = ran.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(/^tskit: error: /);
      expect(lines.at(-1)).toMatch(message);
      expect(lines.filter((l) => l.startsWith('tskit: error'))).toHaveLength(1);
      expect(await readdir(out)).toEqual([]);
      expect(MAX_SIZES[format as keyof typeof MAX_SIZES].bytes).toBeLessThan(PiB);
    });
  }

  it('to qcow2 (qemu\'s limit is 2 PiB with 64 KiB clusters): converted, and qemu-img checks it', async () => {
    const out = join(dir, 'out.qcow2');
    const ran = await tskit(['convert', big, out, '-f', 'qcow2'], {timeout: 120_000});
    expect(ran.code, ran.stderr).toBe(0);
    expect(qemuInfo(out)['virtual-size']).toBe(PiB);
    expect(qemuImg(['check', out])).toMatch(/No errors were found/);
  });

  it('a qcow2 past 2 PiB is refused the same way', async () => {
    expect(MAX_SIZES.qcow2.bytes).toBe(2 * PiB);
    const bigger = join(dir, 'four.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', bigger, '4P']);
    const ran = await tskit(['convert', bigger, join(dir, 'four-out.qcow2'), '-f', 'qcow2'], {timeout: 60_000});
    expect(ran.stderr.trim()).toMatch(/^tskit: error: a qcow2 disk holds at most 2 PiB \(qemu's limit for 64 KiB clusters: an L1 table of at most 32 MiB\); this disk is 4 PiB$/);
  });

  it('to raw: as large as the file system allows (ext4 stops at 16 TiB: one line naming the file, nothing left)', async () => {
    const out = join(dir, 'raw');
    await mkdir(out);
    const ran = await tskit(['convert', big, join(out, 'disk.raw'), '-f', 'raw'], {timeout: 120_000});
    if (ran.code === 0) {
      expect((await readdir(out))).toEqual(['disk.raw']);
    } else {
      expect(ran.stderr.trim()).toMatch(/^tskit: error: writing .*disk\.raw: .*(too large|EFBIG)/i);
      expect(ran.stderr.trim().split('\n').filter((l) => l.startsWith('tskit: error'))).toHaveLength(1);
      expect(await readdir(out)).toEqual([]);
    }
  });
});
