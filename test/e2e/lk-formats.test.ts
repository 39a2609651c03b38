// LinuxKit's build features tskit gained for issue 16: the kernel+squashfs, kernel+erofs and
// iso-efi-initrd formats, `-f a,b`, the default output names, `--decompress-kernel` and
// `--input-tar`, each through the built CLI against the fixture registry. The filesystem
// images are checked by squashfs-tools and erofs-utils against what mksquashfs / mkfs.erofs
// make of the same build's root filesystem (the build's tar unpacked, boot/ emptied: what
// LinuxKit's mkimage-squashfs and mkimage-erofs containers do with LinuxKit's tar, whose
// parity with tskit's is test/e2e/parity.test.ts), and NAME-kernel/NAME-cmdline against
// LinuxKit v1.8.2's own (it writes those before it needs Docker for the image).
import {execFile, execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, jsonLines, ROOT, tskit} from '../support/cli.ts';
import {builtinHello} from '../support/builtin-kernel.ts';
import {findLinuxkit} from '../support/linuxkit.ts';

const run = promisify(execFile);
const mirror = inject('tskitMirror');
const registryUrl = inject('tskitRegistryUrl');
const linuxkit = await findLinuxkit();
let work: string;
let cache: string;

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const build = (args: string[], env: Record<string, string> = {}, input?: string) =>
  tskit(['build', ...args.slice(0, -1), '--mirror', mirror, ...args.slice(-1)], {env: {TSKIT_CACHE: cache, ...env}, ...(input ? {input} : {}), timeout: 300_000});

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-lkformats-'));
  cache = join(work, 'cache');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

/** The build's root filesystem as LinuxKit's mkimage containers see it: its tar unpacked (as root), boot/ emptied. */
async function unpackRoot(tar: string, dir: string): Promise<void> {
  await mkdir(dir, {recursive: true});
  // --delay-directory-restore: a directory's time is set after what lands in it (as bsdtar does)
  await run('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--delay-directory-restore', '--warning=no-unknown-keyword', '-xpf', tar, '-C', dir]);
  const boot = await stat(join(dir, 'boot'));
  await run('sh', ['-c', `rm -rf "${dir}"/boot/* && chmod 755 "${dir}"`]);
  await utimes(join(dir, 'boot'), boot.atime, boot.mtime); // emptying it is not a change the image has
}

const squashListing = (image: string) =>
  execFileSync('unsquashfs', ['-lln', '-d', 'R', image], {encoding: 'utf8', maxBuffer: 64 << 20})
    .split('\n')
    .filter((l) => / R(\/|$)/.test(l))
    .map((l) => (l.startsWith('d') ? l.replace(/^(\S+ \S+)\s+\d+ /, '$1 DIR ') : l))
    .map((l) => (/ R$/.test(l) ? 'ROOT' : l)); // the root's time: mksquashfs takes its directory's

describe('kernel+squashfs, kernel+erofs, iso-efi-initrd', () => {
  let out: string;
  let hello: string;
  beforeAll(async () => {
    out = join(work, 'fs');
    hello = join(work, 'hello.yml');
    await writeFile(hello, builtinHello(await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')));
    const built = await build(['-f', 'kernel+squashfs,kernel+erofs,tar', '-f', 'iso-efi-initrd', '--dir', out, hello]);
    expect(built.code, built.stderr).toBe(0);
  });

  it('writes LinuxKit\'s file names, one kernel and command line for both', async () => {
    expect((await readdir(out)).sort()).toEqual(['hello-cmdline', 'hello-efi-initrd.iso', 'hello-erofs.img', 'hello-kernel', 'hello-squashfs.img', 'hello.tar']);
    expect(await readFile(join(out, 'hello-cmdline'), 'utf8')).toBe('console=ttyS0 panic=1');
  });

  it('squashfs: what mksquashfs makes of the same root filesystem', async () => {
    const root = join(work, 'root-sq');
    await unpackRoot(join(out, 'hello.tar'), root);
    const reference = join(work, 'reference.sqfs');
    await run('mksquashfs', [root, reference, '-noappend', '-no-progress', '-quiet']);
    const ours = squashListing(join(out, 'hello-squashfs.img'));
    expect(ours.length).toBeGreaterThan(500);
    expect(ours).toEqual(squashListing(reference));
    const extracted = join(work, 'sq-out');
    await run('unsquashfs', ['-d', extracted, join(out, 'hello-squashfs.img')]);
    await run('diff', ['-r', '--no-dereference', root, extracted]);
    expect((await readdir(join(extracted, 'boot')))).toEqual([]); // boot/ stays, empty, as LinuxKit's
  });

  it('erofs: fsck.erofs passes and extracts what mkfs.erofs\'s image of the same root does', async () => {
    const image = join(out, 'hello-erofs.img');
    await run('fsck.erofs', [image]);
    const root = join(work, 'root-erofs');
    await unpackRoot(join(out, 'hello.tar'), root);
    const reference = join(work, 'reference.erofs');
    await run('mkfs.erofs', ['--quiet', '--preserve-mtime', reference, root]);
    const [a, b] = [join(work, 'erofs-out'), join(work, 'erofs-ref-out')];
    await run('fsck.erofs', [`--extract=${a}`, image]);
    await run('fsck.erofs', [`--extract=${b}`, reference]);
    const describeTree = (dir: string) => execFileSync('bash', ['-c', `cd ${dir} && find . -mindepth 1 -printf '%p %M %U:%G %T@ %s %l\\n' | sort`], {encoding: 'utf8', maxBuffer: 64 << 20});
    expect(describeTree(a)).toBe(describeTree(b));
    await run('diff', ['-r', '--no-dereference', root, a]);
  });

  it.skipIf(!linuxkit.path)('NAME-kernel and NAME-cmdline are LinuxKit\'s bytes', async () => {
    const lk = join(work, 'lk-fs');
    await mkdir(lk, {recursive: true});
    // LinuxKit writes the kernel and command line, then needs Docker for the squashfs image
    const r = await run(linuxkit.path!, ['--mirror', `localhost:5000=${registryUrl}`, 'build', '--no-sbom', '--cache', join(work, 'lk-cache'), '-f', 'kernel+squashfs', '--dir', lk, hello]).catch((e: {stderr: string}) => e);
    expect(String(r.stderr)).toMatch(/docker/);
    expect(await sha256(join(lk, 'hello-kernel'))).toBe(await sha256(join(out, 'hello-kernel')));
    expect(await readFile(join(lk, 'hello-cmdline'), 'utf8')).toBe(await readFile(join(out, 'hello-cmdline'), 'utf8'));
  });
});

describe('flags and names as LinuxKit', () => {
  it('-f takes comma lists, the name comes from the last file, stdin is "moby", -o alone means tar', async () => {
    const dir = join(work, 'names');
    const base = join(ROOT, 'templates/hello.yml');
    const extra = join(work, 'extra.yml');
    await writeFile(extra, 'files:\n  - path: etc/extra\n    contents: "x"\n');
    const r = await build(['-f', 'tar,kernel+initrd', '--dir', dir, base, extra]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['extra-cmdline', 'extra-initrd.img', 'extra-kernel', 'extra.tar']);
    const stdin = join(work, 'stdin');
    const s = await build(['-f', 'tar', '--dir', stdin, '-'], {}, await readFile(base, 'utf8'));
    expect(s.code, s.stderr).toBe(0);
    expect(await readdir(stdin)).toEqual(['moby.tar']);
    const o = await build(['-o', join(work, 'single.tar'), base]);
    expect(o.code, o.stderr).toBe(0);
    execFileSync('tar', ['-tf', join(work, 'single.tar')], {maxBuffer: 64 << 20});
    const bad = await build(['-f', 'tar,nope', base]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/nope/);
  });
});

describe('--decompress-kernel', () => {
  it('a bzImage with an LZ4 payload (Debian\'s kernel) becomes the vmlinux ELF the build compressed', async () => {
    const dir = join(work, 'decompress');
    const r = await build(['-f', 'kernel+initrd', '--decompress-kernel', '--dir', dir, join(ROOT, 'templates/hello.yml')]);
    expect(r.code, r.stderr).toBe(0);
    const kernel = await readFile(join(dir, 'hello-kernel'));
    expect(kernel.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // the kernel build appends the uncompressed size to the payload: an independent check of the length
    const bz = await readFile(join(ROOT, '.fixtures/debs/linux-image/boot', (await readdir(join(ROOT, '.fixtures/debs/linux-image/boot'))).find((f) => f.startsWith('vmlinuz-'))!));
    const payloadEnd = bz.readUInt32LE(0x248) + (bz[0x1f1]! + 1) * 512 + bz.readUInt32LE(0x24c);
    expect(kernel.length).toBe(bz.readUInt32LE(payloadEnd - 4));
    const e = execFileSync('readelf', ['-h', join(dir, 'hello-kernel')], {encoding: 'utf8'});
    expect(e).toMatch(/Advanced Micro Devices X86-64/);
  });

  it.skipIf(!linuxkit.path)('a gzip bzImage gives LinuxKit\'s bytes', async () => {
    const yml = join(work, 'builtin.yml');
    await writeFile(yml, builtinHello(await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')));
    const dir = join(work, 'decompress-gzip');
    const lk = join(work, 'decompress-lk');
    await mkdir(lk, {recursive: true});
    const r = await build(['-f', 'kernel+initrd', '--decompress-kernel', '--dir', dir, yml]);
    expect(r.code, r.stderr).toBe(0);
    await run(linuxkit.path!, ['--mirror', `localhost:5000=${registryUrl}`, 'build', '--no-sbom', '--cache', join(work, 'lk-cache'), '--decompress-kernel', '-f', 'kernel+initrd', '--dir', lk, yml]);
    expect((await readFile(join(dir, 'builtin-kernel'))).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(await sha256(join(dir, 'builtin-kernel'))).toBe(await sha256(join(lk, 'builtin-kernel')));
  });
});

describe('--input-tar', () => {
  it('takes the unchanged parts from the old tar and gives the bytes a fresh build gives', async () => {
    const dir = join(work, 'input-tar');
    await mkdir(dir, {recursive: true});
    const template = await readFile(join(ROOT, 'templates/hello.yml'), 'utf8');
    const v1 = template.replace('files:\n', 'files:\n  - path: etc/linuxkit.yml\n    metadata: yaml\n');
    const v2 = v1.replace('heartbeat $i', 'beat $i');
    await writeFile(join(dir, 'v1.yml'), v1);
    await writeFile(join(dir, 'v2.yml'), v2);
    expect((await build(['-f', 'tar', '--dir', dir, join(dir, 'v1.yml')])).code).toBe(0);
    const fresh = await build(['-f', 'tar', '--name', 'fresh', '--dir', dir, join(dir, 'v2.yml')]);
    expect(fresh.code, fresh.stderr).toBe(0);
    const reused = await build(['-f', 'tar,kernel+initrd', '--json', '--name', 'reused', '--input-tar', join(dir, 'v1.tar'), '--dir', dir, join(dir, 'v2.yml')]);
    expect(reused.code, reused.stderr).toBe(0);
    const events = jsonLines(reused.stdout);
    expect(events.some((e) => e.type === 'log' && /reusing kernel, init, onboot\[0\]$/.test(String(e.message)))).toBe(true);
    // only the changed service's image was resolved
    expect(events.filter((e) => e.type === 'image.resolved').map((e) => e.ref)).toEqual(['localhost:5000/tskit/busybox:1']);
    expect(await sha256(join(dir, 'reused.tar'))).toBe(await sha256(join(dir, 'fresh.tar')));

    const same = await build(['-f', 'tar', '--json', '--name', 'same', '--input-tar', join(dir, 'v1.tar'), '--dir', dir, join(dir, 'v1.yml')]);
    expect(jsonLines(same.stdout).filter((e) => e.type === 'image.resolved')).toEqual([]);
    expect(await sha256(join(dir, 'same.tar'))).toBe(await sha256(join(dir, 'v1.tar')));
  });

  it('refuses --pull with it, and a file that is not a tar, in one line, writing nothing', async () => {
    const dir = join(work, 'input-tar');
    const v1 = join(dir, 'v1.yml');
    const pull = await build(['--pull', '--input-tar', join(dir, 'v1.tar'), v1]);
    expect(pull.code).not.toBe(0);
    const notTar = await build(['-f', 'tar', '--name', 'nt', '--dir', join(work, 'nt'), '--input-tar', v1, v1]);
    expect(notTar.code).toBe(1);
    expect(notTar.stderr.trim().split('\n')).toHaveLength(1);
    expect(notTar.stderr).toMatch(/v1\.yml: bad checksum/);
    expect(await readdir(join(work, 'nt')).catch(() => [])).toEqual([]);
  });
});
