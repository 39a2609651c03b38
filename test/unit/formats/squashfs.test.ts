// The squashfs writer against squashfs-tools: unsquashfs lists and extracts exactly the
// entries written (owners, modes, times, devices, links, xattrs, contents), and its listing of
// the image equals its listing of what mksquashfs makes from the same tree unpacked on disk.
import {execFileSync, spawnSync} from 'node:child_process';
import {readFile, mkdtemp, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {writeSquashfs} from '../../../src/formats/squashfs.ts';
import {sampleEntries, streamOf, unpackSample} from '../../support/fs-sample.ts';

const ROOT_MTIME = 1_600_000_000;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-squashfs-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

const listing = (image: string) =>
  execFileSync('unsquashfs', ['-lln', '-d', 'R', image], {encoding: 'utf8'})
    .split('\n')
    .filter((l) => l.includes(' R'))
    // directory sizes depend on how each tool packs its listings; everything else must agree
    .map((l) => (l.startsWith('d') ? l.replace(/^(\S+ \S+)\s+\d+ /, '$1 DIR ') : l));

describe('squashfs', () => {
  it('holds exactly what was written, as unsquashfs reads it, and lists like mksquashfs', async () => {
    const entries = sampleEntries();
    const image = join(work, 'tskit.sqfs');
    const written = await writeSquashfs(streamOf(entries), image, {mtime: ROOT_MTIME});
    expect(written.size % 4096).toBe(0);
    expect((await stat(image)).size).toBe(written.size);

    const info = execFileSync('unsquashfs', ['-s', image], {encoding: 'utf8'});
    expect(info).toMatch(/Compression gzip/);
    expect(info).toMatch(/Block size 131072/);
    expect(info).toMatch(/Number of inodes 718/); // 718 entries, one a hard link, and the root

    const tree = join(work, 'tree');
    await unpackSample(entries, tree, ROOT_MTIME);
    const reference = join(work, 'reference.sqfs');
    execFileSync('mksquashfs', [tree, reference, '-noappend', '-no-progress', '-quiet'], {env: {...process.env, SOURCE_DATE_EPOCH: String(ROOT_MTIME)}});
    expect(listing(image)).toEqual(listing(reference));

    const out = join(work, 'out');
    execFileSync('unsquashfs', ['-d', out, image], {stdio: 'ignore'});
    // byte for byte, owners, modes, times, devices, xattrs: GNU diff and stat over both trees
    const diff = spawnSync('diff', ['-r', '--no-dereference', '--exclude=dev', tree, out], {encoding: 'utf8'}); // diff cannot compare devices and fifos: find below does
    expect(diff.stdout + diff.stderr).toBe('');
    const describe = (dir: string) => execFileSync('bash', ['-c', `cd ${dir} && find . -printf '%p %M %U:%G %T@ %s %l\\n' | sort`], {encoding: 'utf8'});
    expect(describe(out).replace(/^\. .*\n/m, '')).toBe(describe(tree).replace(/^\. .*\n/m, ''));
    const xattr = (path: string) => execFileSync('python3', ['-c', 'import os,sys; print(sorted((n, os.getxattr(sys.argv[1], n).hex()) for n in os.listxattr(sys.argv[1])))', path], {encoding: 'utf8'});
    expect(xattr(join(out, 'bin/hello'))).toBe(xattr(join(tree, 'bin/hello')));
    expect(xattr(join(out, 'bin/hello'))).toContain('user.tskit');
    const [a, b] = await Promise.all([stat(join(out, 'bin/hello')), stat(join(out, 'bin/hello-link'))]);
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    const big = await readFile(join(out, 'bin/big'));
    expect(big.subarray(-7).toString()).toBe('the end');
  });

  it('writes the same bytes twice, and takes the time it is given', async () => {
    const one = await writeSquashfs(streamOf(sampleEntries(2)), join(work, 'one.sqfs'), {mtime: 1});
    const two = await writeSquashfs(streamOf(sampleEntries(2)), join(work, 'two.sqfs'), {mtime: 1});
    const three = await writeSquashfs(streamOf(sampleEntries(2)), join(work, 'three.sqfs'), {mtime: 2});
    expect(two.sha256).toBe(one.sha256);
    expect(three.sha256).not.toBe(one.sha256);
  });

  it('stores a file whose bytes an earlier file has once, as mksquashfs does', async () => {
    const all = sampleEntries(4);
    const withCopies = await writeSquashfs(streamOf(all), join(work, 'copies.sqfs'), {mtime: 1});
    const without = await writeSquashfs(streamOf(all.filter((e) => !e.path.endsWith('-copy'))), join(work, 'no-copies.sqfs'), {mtime: 1});
    expect(withCopies.size).toBe(without.size);
    const out = join(work, 'copies');
    execFileSync('unsquashfs', ['-d', out, join(work, 'copies.sqfs')], {stdio: 'ignore'});
    execFileSync('cmp', [join(out, 'bin/big'), join(out, 'bin/big-copy')]);
    execFileSync('cmp', [join(out, 'bin/hello'), join(out, 'bin/hello-copy')]);
  });

  it('refuses an entry whose content is shorter than its size, naming it', async () => {
    const bad = [{path: 'f', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 10, content: [Buffer.from('abc')]}];
    await expect(writeSquashfs(streamOf(bad), join(work, 'bad.sqfs'), {mtime: 0})).rejects.toThrow(/f: the entry says 10 bytes but its content has 3/);
  });
});
