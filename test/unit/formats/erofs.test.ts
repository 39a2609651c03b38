// The EROFS writer against erofs-utils: fsck.erofs checks the image and extracts exactly the
// tree that was written (what it extracts from mkfs.erofs's image of the same tree unpacked
// on disk), dump.erofs reads back the inode details extraction loses (hard links, xattrs).
import {execFileSync} from 'node:child_process';
import {mkdtemp, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {writeErofs} from '../../../src/formats/erofs.ts';
import {sampleEntries, streamOf, unpackSample} from '../../support/fs-sample.ts';

const ROOT_MTIME = 1_600_000_000;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-erofs-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

const describeTree = (dir: string) => execFileSync('bash', ['-c', `cd ${dir} && find . -printf '%p %M %U:%G %T@ %s %l\\n' | sort`], {encoding: 'utf8', maxBuffer: 1 << 24});
const inode = (image: string, path: string) =>
  execFileSync('dump.erofs', [`--path=${path}`, image], {encoding: 'utf8'})
    .split('\n')
    .filter((l) => /Size:|Links:|Xattr size|Uid:/.test(l))
    .map((l) => l.replace(/NID: \d+\s+/, '').replace(/Layout: \d+\s+/, '').replace(/Inode size: \d+\s+/, '').replace(/On-disk size: \d+\s+/, ''));

describe('erofs', () => {
  it('passes fsck.erofs and holds what was written, as mkfs.erofs would', async () => {
    const entries = sampleEntries();
    const image = join(work, 'tskit.erofs');
    const written = await writeErofs(streamOf(entries), image, {mtime: ROOT_MTIME});
    expect(written.size % 4096).toBe(0);
    expect((await stat(image)).size).toBe(written.size);
    execFileSync('fsck.erofs', [image]);
    const info = execFileSync('dump.erofs', ['-s', image], {encoding: 'utf8'});
    expect(info).toMatch(/inode count:\s+718/);

    const tree = join(work, 'tree');
    await unpackSample(entries, tree, ROOT_MTIME);
    const reference = join(work, 'reference.erofs');
    execFileSync('mkfs.erofs', ['--quiet', '--preserve-mtime', reference, tree]);

    const out = join(work, 'out');
    const refOut = join(work, 'ref-out');
    execFileSync('fsck.erofs', [`--extract=${out}`, image]);
    execFileSync('fsck.erofs', [`--extract=${refOut}`, reference]);
    execFileSync('diff', ['-r', '--no-dereference', '--exclude=dev', tree, out]);
    expect(describeTree(out)).toBe(describeTree(refOut));
    for (const path of ['/bin/hello', '/bin/hello-link', '/bin/big', '/dev/sda', '/empty', '/many', '/bin/sh']) {
      expect(inode(image, path)).toEqual(inode(reference, path));
    }
    expect(inode(image, '/bin/hello').join(' ')).toMatch(/Links: 2.*Xattr size: 36.*Uid: 1000\s+Gid: 100/);
  });

  it('writes the same bytes twice, and takes the time it is given', async () => {
    const one = await writeErofs(streamOf(sampleEntries(2)), join(work, 'one.erofs'), {mtime: 1});
    const two = await writeErofs(streamOf(sampleEntries(2)), join(work, 'two.erofs'), {mtime: 1});
    const three = await writeErofs(streamOf(sampleEntries(2)), join(work, 'three.erofs'), {mtime: 2});
    expect(two.sha256).toBe(one.sha256);
    expect(three.sha256).not.toBe(one.sha256);
  });
});
