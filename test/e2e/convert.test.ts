// `tskit convert` as a user runs it (the built CLI): every output format checked by qemu-img
// (or GNU tar), round trips back to raw, the same input giving the same bytes, damaged and
// truncated inputs failing with exit 1 and no output, Ctrl-C leaving nothing, and a boot
// disk converted to each format booting in `tskit run qemu` to its marker.
import {execFileSync, spawn} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {mkdtempSync} from 'node:fs';
import {mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {BIN, NODE, ensureBuilt, jsonLines, tskit} from '../support/cli.ts';
import {QEMU_DRIVER, mixedDisk, qemuCompare, qemuInfo} from '../support/disk-images.ts';
import {makeBootDisk} from '../support/initrd-bootdisk.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'tskit-test-convert-'));
const size = 9 * MiB + 3 * 512;
const raw = join(dir, 'disk.raw');
const env = {TSKIT_STATE: join(dir, 'state'), SOURCE_DATE_EPOCH: '1700000000'};
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
/** Files in `where` other than the ones a test expects: temp files must never stay. */
const strays = async (where: string) => (await readdir(where)).filter((f) => f.includes('tskit-tmp'));

const outputs: Record<string, string> = {raw: 'out.img', aws: 'out-aws.raw', vhd: 'out.vhd', 'dynamic-vhd': 'out-dynamic.vhd', vhdx: 'out.vhdx', vmdk: 'out.vmdk', qcow2: 'out.qcow2', gcp: 'out.img.tar.gz'};
const virtualSize: Record<string, number> = {raw: size, aws: GiB, vhd: 10 * MiB, 'dynamic-vhd': 10 * MiB, vhdx: size, vmdk: size, qcow2: size, gcp: GiB};

beforeAll(async () => {
  await ensureBuilt();
  await writeFile(raw, mixedDisk(size, 'e2e'));
}, 300_000);

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('tskit convert', () => {
  it.each(Object.keys(outputs))('raw to %s: qemu-img reads back the disk; --json gives the result', async (format) => {
    const out = join(dir, outputs[format]!);
    const r = await tskit(['convert', raw, out, '--format', format, '--json', '--sha256'], {env});
    expect(r.code, r.stderr).toBe(0);
    const result = jsonLines(r.stdout).find((e) => e.type === 'result');
    expect(result).toMatchObject({input: raw, inputFormat: 'raw', output: out, format, inputSize: size, virtualSize: virtualSize[format], size: (await stat(out)).size, sha256: await sha256(out)});
    if (format === 'gcp') {
      const listed = execFileSync('tar', ['-tzf', out], {encoding: 'utf8'});
      expect(listed).toBe('disk.raw\n');
      const unpacked = join(dir, 'gcp-unpacked');
      await mkdir(unpacked);
      execFileSync('tar', ['-xzf', out, '-C', unpacked]);
      expect(qemuCompare(raw, join(unpacked, 'disk.raw'), 'raw').identical).toBe(true);
      expect((await stat(join(unpacked, 'disk.raw'))).size).toBe(GiB);
      await rm(unpacked, {recursive: true});
    } else {
      expect(qemuCompare(raw, out, QEMU_DRIVER[format]!)).toEqual({identical: true, message: expect.stringMatching(/Images are identical\.$/)});
      expect(qemuInfo(out, QEMU_DRIVER[format])).toMatchObject({format: QEMU_DRIVER[format], 'virtual-size': virtualSize[format]});
    }
    if (virtualSize[format] !== size) expect(r.stdout).toMatch(/"level":"warn","message":".*virtual size 9438720 bytes rounded up to/);
    expect(await strays(dir)).toEqual([]);
  });

  it('converts each format back to raw, byte for byte', async () => {
    const original = await readFile(raw);
    for (const format of ['vhd', 'dynamic-vhd', 'vhdx', 'vmdk', 'qcow2']) {
      const back = join(dir, `back-${format}.raw`);
      const r = await tskit(['convert', join(dir, outputs[format]!), back, '-f', 'raw'], {env});
      expect(r.code, r.stderr).toBe(0);
      const bytes = await readFile(back);
      expect(bytes.subarray(0, size).equals(original), format).toBe(true);
      expect(bytes.subarray(size).every((b) => b === 0)).toBe(true);
      await rm(back);
    }
  });

  it('gives the same bytes for the same input, run after run', async () => {
    for (const format of ['vmdk', 'vhdx', 'dynamic-vhd', 'vhd', 'qcow2', 'gcp']) {
      const again = join(dir, 'again', outputs[format]!);
      await mkdir(join(dir, 'again'), {recursive: true});
      const r = await tskit(['convert', raw, again, '-f', format, '--json'], {env});
      expect(r.code, r.stderr).toBe(0);
      expect(await sha256(again), format).toBe(await sha256(join(dir, outputs[format]!)));
      await rm(again);
    }
  });

  it('keeps every chunk of a larger disk apart (the reader reuses its buffers as it goes)', async () => {
    // 48 MiB: twelve of the reader's 4 MiB chunks, data in each (different in each), holes between
    const big = join(dir, 'chunks-input.img');
    const bytes = Buffer.alloc(48 * MiB);
    for (let at = 0; at < bytes.length; at += 3 * MiB + 64 * 1024) randomBytes(MiB + 5 * 512).copy(bytes, at);
    await writeFile(big, bytes);
    for (const format of ['raw', 'vhd', 'dynamic-vhd', 'vhdx', 'vmdk', 'qcow2']) {
      const out = join(dir, `chunks.${format}`);
      const r = await tskit(['convert', big, out, '-f', format], {env});
      expect(r.code, r.stderr).toBe(0);
      expect(qemuCompare(big, out, QEMU_DRIVER[format]!).identical, format).toBe(true);
      await rm(out);
    }
    await rm(big);
  });

  it('prints a human summary by default', async () => {
    const out = join(dir, 'human.qcow2');
    const r = await tskit(['convert', raw, out, '-f', 'qcow2', '--sha256'], {env});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^.*human\.qcow2 {2}qcow2 {2}virtual 9\.0 MiB {2}file [\d.]+ MiB {2}sha256:[0-9a-f]{16}… {2}\(raw in [\d.]+ s\)\n$/);
    await rm(out);
  });
});

describe('tskit convert on bad input', () => {
  const damaged: Array<[string, (bytes: Buffer) => Buffer, RegExp]> = [
    ['out.qcow2', (b) => b.subarray(0, b.length - 200_000), /not a valid qcow2 image: cluster at virtual offset \d+ .* lies past the end of the file/],
    ['out.vhd', (b) => Buffer.concat([b.subarray(0, b.length - 400), Buffer.from([b[b.length - 400]! ^ 0x40]), b.subarray(b.length - 399)]), /not a valid VHD image: footer at byte \d+ has checksum 0x[0-9a-f]+, its bytes sum to 0x[0-9a-f]+: it is damaged/],
    ['out-dynamic.vhd', (b) => b.subarray(0, b.length - MiB), /not a valid VHD image: no footer in the last 512 bytes \(byte \d+\) although the file starts with a footer copy: the file is truncated/],
    ['out.vhdx', (b) => Buffer.concat([b.subarray(0, 65536 + 8), Buffer.from('XXXX'), b.subarray(65536 + 12, 131072 + 8), Buffer.from('XXXX'), b.subarray(131072 + 12)]), /not a valid VHDX image: header at byte 65536: CRC-32C/],
    ['out.vmdk', (b) => b.subarray(0, b.length - 700), /not a valid VMDK image: the header defers to a footer, but there is no footer marker/],
    ['out.img', () => Buffer.alloc(0), /is empty/],
  ];
  it.each(damaged)('%s: exit 1, the structure and byte offset named, no output', async (name, damage, message) => {
    const input = join(dir, `damaged-${name}`);
    await writeFile(input, damage(await readFile(join(dir, name))));
    const out = join(dir, `never-${name}.qcow2`);
    const r = await tskit(['convert', input, out, '-f', 'qcow2'], {env});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tskit: error: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
    expect(await strays(dir)).toEqual([]);
    await rm(input);
  });

  it('a fixed VHD without its footer is raw, unless --input-format says vhd', async () => {
    const input = join(dir, 'footless.vhd');
    const bytes = await readFile(join(dir, 'out.vhd'));
    await writeFile(input, bytes.subarray(0, bytes.length - 512));
    const r = await tskit(['convert', input, join(dir, 'never.raw'), '-f', 'raw', '--input-format', 'vhd'], {env});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tskit: error: .*footless\.vhd: not a valid VHD image: no "conectix" footer in the last 512 bytes \(byte 10485248\)/);
    await expect(stat(join(dir, 'never.raw'))).rejects.toThrow(/ENOENT/);
    await rm(input);
  });

  it('refuses to write over its input, into a missing directory, or a format it does not know', async () => {
    const r = await tskit(['convert', raw, raw, '-f', 'raw'], {env});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tskit: error: the output .*disk\.raw is the input/);
    const nowhere = await tskit(['convert', raw, join(dir, 'missing', 'x.qcow2'), '-f', 'qcow2'], {env});
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/^tskit: error: cannot write .*missing\/x\.qcow2: ENOENT\n$/);
    const bad = await tskit(['convert', raw, join(dir, 'x'), '-f', 'vdi'], {env});
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.replace(/\s*›\s*|\s+/g, ' ')).toMatch(/Expected --format=vdi to be one of: raw, aws, vhd, dynamic-vhd, vhdx, vmdk, qcow2, gcp/);
  });

  it('Ctrl-C (SIGINT) stops it with 130, leaving no output and no temp file', async () => {
    const big = join(dir, 'random.raw');
    await writeFile(big, randomBytes(96 * MiB));
    const out = join(dir, 'interrupted.vmdk');
    const child = spawn(NODE, [BIN, 'convert', big, out, '-f', 'vmdk', '--level', '9', '--json'], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('"type":"progress"')) resolve();
      });
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/tskit: error: interrupted by SIGINT/);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
    expect(await strays(dir)).toEqual([]);
    await rm(big);
  });
});

describe('converted boot disks boot in tskit run qemu', () => {
  it('a BIOS boot sector reaches its marker from every format', async () => {
    const boot = join(dir, 'boot', 'boot.raw');
    await mkdir(join(dir, 'boot'), {recursive: true});
    await makeBootDisk(boot, 'TSKIT-CONVERTED-BOOT-OK');
    const formats: Array<[string, string]> = [['raw', 'boot.img'], ['aws', 'boot-aws.raw'], ['qcow2', 'boot.qcow2'], ['vhd', 'boot.vhd'], ['dynamic-vhd', 'boot-dynamic.vhd'], ['vhdx', 'boot.vhdx'], ['vmdk', 'boot.vmdk'], ['gcp', 'boot.img.tar.gz']];
    for (const [format, name] of formats) {
      let disk = join(dir, 'boot', name);
      const c = await tskit(['convert', boot, disk, '-f', format], {env});
      expect(c.code, c.stderr).toBe(0);
      if (format === 'gcp') {
        const unpacked = join(dir, 'boot', 'gcp');
        await mkdir(unpacked);
        execFileSync('tar', ['-xzf', disk, '-C', unpacked]);
        disk = join(unpacked, 'disk.raw');
      }
      const r = await tskit(['run', 'qemu', disk, '--wait-for', 'TSKIT-CONVERTED-BOOT-OK', '--timeout', '60s', '--networking', 'none', '--accel', 'tcg'], {env, timeout: 90_000});
      expect(r.code, `${format}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('TSKIT-CONVERTED-BOOT-OK');
    }
  });
});
