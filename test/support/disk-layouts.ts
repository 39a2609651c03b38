// Test material for the bootable layouts: the fixture bootloader image's files, synthetic
// payloads (kernel/initrd files of chosen sizes), host tools run on the results.
import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {promisify} from 'node:util';
import type {FixtureSet} from '../fixtures/make-fixtures.ts';
import {BOOTLOADER_PATHS, type BootloaderFiles} from '../../src/formats/bootloader.ts';
import type {BootPayload, StagedFile} from '../../src/formats/layout.ts';

export const run = promisify(execFile);

/** Runs a tool; returns stdout+stderr and the exit code without throwing. */
export async function tool(command: string, args: string[], env: Record<string, string> = {}): Promise<{code: number; out: string}> {
  try {
    const {stdout, stderr} = await run(command, args, {env: {...process.env, MTOOLS_SKIP_CHECK: '1', ...env}, maxBuffer: 64 * 1024 * 1024});
    return {code: 0, out: stdout + stderr};
  } catch (error) {
    const e = error as {code?: number; stdout?: string; stderr?: string};
    return {code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}`};
  }
}

/** The files of the fixture image tskit/bootloader:1, unpacked into `dir`. */
export async function fixtureBootloader(set: FixtureSet, dir: string): Promise<BootloaderFiles> {
  const image = set.images.find((i) => i.ref === 'tskit/bootloader:1');
  if (!image) throw new Error('the fixture set has no tskit/bootloader:1');
  const blob = (digest: string) => join(image.layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  const manifest = JSON.parse(await readFile(blob(image.digest), 'utf8')) as {layers: Array<{digest: string}>};
  await mkdir(dir, {recursive: true});
  for (const layer of manifest.layers) await run('tar', ['-xzf', blob(layer.digest), '-C', dir]);
  const files: BootloaderFiles = {};
  for (const [key, path] of Object.entries(BOOTLOADER_PATHS)) files[key as keyof BootloaderFiles] = await readFile(join(dir, path));
  return files;
}

/** A file of `size` deterministic pseudo-random bytes (seeded), as a staged payload part. */
export async function payloadFile(path: string, size: number, seed: string): Promise<StagedFile> {
  const chunks: Buffer[] = [];
  let made = 0;
  let counter = 0;
  while (made < size) {
    const block = createHash('sha512').update(`${seed}:${counter++}`).digest();
    chunks.push(block);
    made += block.length;
  }
  const data = Buffer.concat(chunks).subarray(0, size);
  await writeFile(path, data);
  return {path, size, sha256: createHash('sha256').update(data).digest('hex')};
}

export async function payload(dir: string, sizes = {kernel: 300_000, initrd: 700_001}, cmdline = 'console=ttyS0 panic=1'): Promise<BootPayload> {
  await mkdir(dir, {recursive: true});
  return {
    kernel: await payloadFile(join(dir, 'kernel'), sizes.kernel, 'kernel'),
    initrd: await payloadFile(join(dir, 'initrd'), sizes.initrd, 'initrd'),
    cmdline,
  };
}

/** The bytes `length` from `offset` of a file. */
export async function slice(path: string, offset: number, length: number): Promise<Buffer> {
  const {open} = await import('node:fs/promises');
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  } finally {
    await handle.close();
  }
}
