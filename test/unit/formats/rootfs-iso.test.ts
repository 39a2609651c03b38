// The kernel+iso root filesystem ISO against cdrkit: isoinfo reads through Rock Ridge exactly
// the tree that was written (names, modes, owners, sizes, times, symlinks, hard links), as it
// reads genisoimage's ISO of the same tree unpacked on disk (LinuxKit's mkimage-iso runs
// `genisoimage -l -J -R`), and extracts the same bytes. The kernel mounting it as its root is
// test/e2e/lk-boot.test.ts.
import {execFileSync} from 'node:child_process';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {writeRootfsIso} from '../../../src/formats/rootfs-iso.ts';
import {sampleEntries, streamOf, unpackSample} from '../../support/fs-sample.ts';

const ROOT_MTIME = 1_600_000_000;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-rootfs-iso-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

// isoinfo's Rock Ridge listing, without what each writer chooses: extents and directory sizes,
// and the order (ISO 9660 names, which differ between writers, decide it)
const listing = (iso: string) =>
  execFileSync('isoinfo', ['-R', '-l', '-i', iso], {encoding: 'utf8', maxBuffer: 1 << 24})
    .split('\n')
    .map((l) => l.replace(/\[ *\d+ \d+\]/, '').replace(/^(d\S+\s+\S+\s+\S+\s+\S+)\s+\d+ /, '$1 DIR '))
    .sort();

describe('kernel+iso root filesystem ISO', () => {
  it('reads back through Rock Ridge as genisoimage\'s ISO of the same tree does', async () => {
    const entries = sampleEntries();
    const iso = join(work, 'tskit.iso');
    await writeRootfsIso(streamOf(entries), iso, {mtime: ROOT_MTIME});
    const tree = join(work, 'tree');
    await unpackSample(entries, tree, ROOT_MTIME);
    const reference = join(work, 'reference.iso');
    execFileSync('genisoimage', ['-quiet', '-o', reference, '-l', '-J', '-R', '-joliet-long', '-input-charset', 'utf8', '-V', 'LinuxKit', tree]);
    const ours = listing(iso);
    expect(ours.join('\n')).toMatch(/hello-link/);
    expect(ours).toEqual(listing(reference));
    for (const path of ['/bin/big', '/bin/exact', '/bin/hello', '/many/sub/deep']) {
      const bytes = execFileSync('isoinfo', ['-R', '-i', iso, '-x', path], {maxBuffer: 1 << 24});
      expect(bytes.equals(await readFile(join(tree, path))), path).toBe(true);
    }
    expect(execFileSync('isoinfo', ['-d', '-i', iso], {encoding: 'utf8'})).toMatch(/Volume id: LinuxKit[\s\S]*Rock Ridge signatures version 1 found/);
  });

  it('writes the same bytes twice', async () => {
    const one = await writeRootfsIso(streamOf(sampleEntries(3)), join(work, 'one.iso'), {mtime: 5});
    const two = await writeRootfsIso(streamOf(sampleEntries(3)), join(work, 'two.iso'), {mtime: 5});
    expect(two.sha256).toBe(one.sha256);
  });
});
