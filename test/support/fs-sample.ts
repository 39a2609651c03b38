// A small root filesystem with every kind of entry the image writers must store (files of
// 0, 1, block-sized and multi-block sizes with a zero block, hard links, symlinks, devices,
// a fifo, xattrs, odd owners and modes, a directory of many long names), as an entry stream
// and, for the reference tools (mksquashfs, mkfs.erofs), unpacked on disk.
import {createHash} from 'node:crypto';
import {chown, lchown, link, mkdir, symlink, utimes, writeFile, chmod, lutimes} from 'node:fs/promises';
import {execFileSync} from 'node:child_process';
import {join} from 'node:path';
import type {Entry} from '../../src/build/entry.ts';

const M = 1_500_000_000;

export function sampleEntries(seed = 1): Entry[] {
  const rand = (n: number) => createHash('sha256').update(`${seed}:${n}`).digest();
  const bytes = (n: number, size: number) => {
    const out = Buffer.alloc(size);
    for (let at = 0, i = 0; at < size; at += 32, i++) rand(n * 100_000 + i).copy(out, at);
    return out;
  };
  const big = Buffer.concat([bytes(1, 200_000), Buffer.alloc(300_000), Buffer.from('the end')]);
  const file = (path: string, content: Buffer, extra: Partial<Entry> = {}): Entry => ({path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: M, size: content.length, content: [content], ...extra});
  const dir = (path: string, extra: Partial<Entry> = {}): Entry => ({path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: M, size: 0, ...extra});
  const out: Entry[] = [
    dir('bin'),
    file('bin/big', big, {mode: 0o755}),
    file('bin/exact', bytes(2, 131072)),
    file('bin/hello', Buffer.from('hello\n'), {uid: 1000, gid: 100, mode: 0o4755, xattrs: {'user.tskit': Buffer.from('sample'), 'trusted.x': Buffer.from([0, 1, 2])}}),
    {path: 'bin/hello-link', type: 'hardlink', mode: 0o755, uid: 1000, gid: 100, mtime: M, size: 0, linkname: 'bin/hello'},
    {path: 'bin/sh', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: M, size: 0, linkname: '/bin/busybox-does-not-exist'},
    file('bin/one', Buffer.from('x')),
    file('bin/big-copy', big, {mode: 0o700, mtime: M + 1}), // the same bytes as bin/big: stored once where a writer deduplicates
    file('bin/hello-copy', Buffer.from('hello\n')),
    dir('dev', {mode: 0o700}),
    {path: 'dev/console', type: 'char', mode: 0o600, uid: 0, gid: 5, mtime: M, size: 0, devmajor: 5, devminor: 1},
    {path: 'dev/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: M, size: 0, devmajor: 8, devminor: 300},
    {path: 'dev/pipe', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: M, size: 0},
    dir('empty', {mode: 0o1777, mtime: M + 5}),
    file('empty-file', Buffer.alloc(0)),
    dir('many'),
  ];
  for (let i = 0; i < 700; i++) out.push(file(`many/a-rather-long-file-name-to-fill-directory-blocks-${String(i).padStart(4, '0')}`, bytes(10 + i, i % 97), {mtime: M + i}));
  out.push(dir('many/sub'), file('many/sub/deep', Buffer.from('deep\n')));
  return out;
}

export async function* streamOf(entries: Entry[]): AsyncGenerator<Entry> {
  for (const entry of entries) yield {...entry, content: entry.content ? [...(entry.content as Buffer[])] : undefined} as Entry;
}

/** Unpacks the sample on disk (as root: owners, devices), root directory mode 0755 at `rootMtime`. */
export async function unpackSample(entries: Entry[], dir: string, rootMtime: number): Promise<void> {
  await mkdir(dir, {recursive: true});
  const dirs: Entry[] = [];
  for (const e of entries) {
    const path = join(dir, e.path);
    switch (e.type) {
      case 'dir':
        await mkdir(path);
        dirs.push(e);
        break;
      case 'file':
        await writeFile(path, Buffer.concat((e.content as Buffer[]) ?? []));
        break;
      case 'hardlink':
        await link(join(dir, e.linkname!), path);
        continue;
      case 'symlink':
        await symlink(e.linkname!, path);
        await lchown(path, e.uid, e.gid);
        await lutimes(path, e.mtime, e.mtime);
        continue;
      case 'char':
      case 'block':
        execFileSync('mknod', [path, e.type === 'char' ? 'c' : 'b', String(e.devmajor), String(e.devminor)]);
        break;
      case 'fifo':
        execFileSync('mkfifo', [path]);
        break;
    }
    await chown(path, e.uid, e.gid);
    await chmod(path, e.mode);
    for (const [name, value] of Object.entries(e.xattrs ?? {})) {
      execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))', path, name, value.toString('hex')]);
    }
    if (e.type !== 'dir') await utimes(path, e.mtime, e.mtime);
  }
  for (const e of dirs.reverse()) await utimes(join(dir, e.path), e.mtime, e.mtime);
  await chmod(dir, 0o755);
  await utimes(dir, rootMtime, rootMtime);
}

