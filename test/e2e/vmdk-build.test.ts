// `tskit build -f vmdk`: two builds of templates/hello.yml with separate caches give the same
// bytes; the embedded descriptor names the final file (not the build's hidden staging name);
// qemu-img checks the VMDK and finds it identical to the raw disk the same build wrote
// (-f aws at the same --size, the same hybrid layout).
import {execFileSync} from 'node:child_process';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';
import {qemuCompare, qemuImg} from '../support/disk-images.ts';

const mirror = inject('tskitMirror');
const HELLO = join(ROOT, 'templates/hello.yml');
let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-vmdk-build-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function buildInto(name: string): Promise<string> {
  const dir = join(work, name);
  const built = await tskit(['build', '-f', 'vmdk', '-f', 'aws', '--size', '1G', '--name', 'hello', '--dir', dir, '--mirror', mirror, HELLO], {env: {TSKIT_CACHE: join(work, `${name}-cache`)}, timeout: 300_000});
  expect(built.code, built.stderr).toBe(0);
  return dir;
}

describe('tskit build -f vmdk', () => {
  it('twice with separate caches: identical files, the descriptor names hello.vmdk, qemu-img check and compare pass', async () => {
    const first = await buildInto('one');
    const second = await buildInto('two');
    expect((await readdir(first)).sort()).toEqual(['hello.raw', 'hello.vmdk']);
    const a = await readFile(join(first, 'hello.vmdk'));
    expect(a.equals(await readFile(join(second, 'hello.vmdk')))).toBe(true);
    const descriptor = a.subarray(512, 512 * 21).toString('utf8').replace(/\0+$/, '');
    expect(descriptor).toMatch(/^RW \d+ SPARSE "hello\.vmdk"$/m);
    expect(descriptor).not.toMatch(/tskit-tmp/);
    expect(qemuImg(['check', join(first, 'hello.vmdk')])).toMatch(/No errors were found/);
    expect(qemuCompare(join(first, 'hello.raw'), join(first, 'hello.vmdk'), 'vmdk')).toEqual({identical: true, message: expect.stringMatching(/Images are identical\.$/)});
    execFileSync('qemu-img', ['info', join(first, 'hello.vmdk')]);
  });
});
