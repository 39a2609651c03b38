import {describe, expect, it} from 'vitest';
import {flattenLayers} from '../../../src/build/flatten.ts';
import {collect, dir, file, hardlink, layer, symlink, whiteout} from '../../support/entries.ts';

const flatten = (...layers: ReturnType<typeof layer>[]) => collect(flattenLayers(layers, {mtime: 7}));
const paths = (items: {path: string}[]) => items.map((i) => i.path);

describe('flattenLayers', () => {
  it('keeps the upper version of a file, once', async () => {
    const out = await flatten(layer('l0', () => [dir('a'), file('a/b', 'v1')]), layer('l1', () => [file('a/b', 'v2')]));
    expect(out).toEqual([
      {path: 'a', type: 'dir', mode: 0o755},
      {path: 'a/b', type: 'file', mode: 0o644, content: 'v2'},
    ]);
  });

  it('applies whiteouts of files and directories', async () => {
    const out = await flatten(
      layer('l0', () => [dir('a'), file('a/b', '1'), file('a/c', '2'), dir('d'), file('d/e', '3')]),
      layer('l1', () => [whiteout('a/.wh.b'), whiteout('.wh.d')]),
    );
    expect(paths(out)).toEqual(['a', 'a/c']);
  });

  it('applies opaque directories to lower layers only', async () => {
    const out = await flatten(
      layer('l0', () => [dir('d'), file('d/x', 'x'), dir('d/sub'), file('d/sub/y', 'y')]),
      layer('l1', () => [dir('d'), file('d/new', 'n'), whiteout('d/.wh..wh..opq')]),
    );
    expect(paths(out)).toEqual(['d', 'd/new']);
  });

  it('hides a directory tree replaced by a file', async () => {
    const out = await flatten(layer('l0', () => [dir('d'), file('d/x', 'x')]), layer('l1', () => [file('d', 'now a file')]));
    expect(out).toEqual([{path: 'd', type: 'file', mode: 0o644, content: 'now a file'}]);
  });

  it('emits parents before children, taking a directory\'s final attributes early', async () => {
    const out = await flatten(
      layer('l0', () => [file('usr/bin/ls', 'elf'), dir('etc'), file('etc/x', 'x')]),
      layer('l1', () => [dir('etc', {mode: 0o700})]),
    );
    expect(out.map((e) => [e.path, e.mode.toString(8)])).toEqual([
      ['usr', '755'],
      ['usr/bin', '755'],
      ['usr/bin/ls', '644'],
      ['etc', '700'],
      ['etc/x', '644'],
    ]);
  });

  it('takes absolute names as relative to the image root', async () => {
    expect(paths(await flatten(layer('l0', () => [file('/etc/x', 'x'), file('./etc/y', 'y')])))).toEqual(['etc', 'etc/x', 'etc/y']);
  });

  it('rejects names that climb out of the image, naming the layer', async () => {
    await expect(flatten(layer('layer 1/1 (sha256:abc) of evil:1', () => [file('../../etc/passwd', 'x')]))).rejects.toThrow(
      /layer 1\/1 \(sha256:abc\) of evil:1: entry "..\/..\/etc\/passwd" climbs out of the image root/,
    );
    await expect(flatten(layer('l0', () => [file('a', 'x'), hardlink('b', '../../etc/shadow')]))).rejects.toThrow(/climbs out of the image root/);
  });

  it('resolves entries written through a symlink inside the image', async () => {
    const out = await flatten(
      layer('l0', () => [dir('etc'), symlink('evil', '/etc'), symlink('evil2', '../../../../etc')]),
      layer('l1', () => [file('evil/passwd', 'p'), file('evil2/shadow', 's')]),
    );
    expect(paths(out)).toEqual(['etc', 'evil', 'evil2', 'etc/passwd', 'etc/shadow']);
  });

  it('rejects symlink loops and files used as directories', async () => {
    await expect(flatten(layer('l0', () => [symlink('a', 'b'), symlink('b', 'a'), file('a/x', 'x')]))).rejects.toThrow(/too many levels of symbolic links/);
    await expect(flatten(layer('l0', () => [file('f', 'x'), file('f/x', 'y')]))).rejects.toThrow(/needs f to be a directory/);
  });

  it('keeps hard links and counts them', async () => {
    const out = await flatten(layer('l0', () => [file('a', 'data'), hardlink('b', 'a'), hardlink('c', '/a')]));
    expect(out).toEqual([
      {path: 'a', type: 'file', mode: 0o644, nlink: 3, content: 'data'},
      {path: 'b', type: 'hardlink', mode: 0o644, linkname: 'a'},
      {path: 'c', type: 'hardlink', mode: 0o644, linkname: 'a'},
    ]);
  });

  it('keeps the old content for links whose file an upper layer replaced', async () => {
    const out = await flatten(
      layer('l0', () => [file('a', 'old'), hardlink('b', 'a'), hardlink('c', 'a')]),
      layer('l1', () => [file('a', 'new')]),
    );
    expect(out).toEqual([
      {path: 'b', type: 'file', mode: 0o644, nlink: 2, content: 'old'},
      {path: 'c', type: 'hardlink', mode: 0o644, linkname: 'b'},
      {path: 'a', type: 'file', mode: 0o644, content: 'new'},
    ]);
  });

  it('rejects a hard link to something missing', async () => {
    await expect(flatten(layer('l0', () => [hardlink('b', 'nowhere')]))).rejects.toThrow(/hard link b points at "nowhere"/);
  });
});
