// The shape of a root filesystem as the image writers (squashfs, erofs) need it at the end:
// every path's metadata and where its data went, never the data itself. Entries arrive in
// the assembled stream's order (parents first); a later entry for the same path wins, as it
// does when LinuxKit's tar is unpacked.
import {TskitError} from '../errors.ts';
import type {Entry} from '../build/entry.ts';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface FsNode<Data> {
  kind: NodeKind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs?: Record<string, Buffer>;
  /** Directory entries, by name (dirs only). */
  children?: Map<string, FsNode<Data>>;
  /** Paths naming this node (hard links make it more than one). */
  nlink: number;
  size: number;
  target?: string;
  devmajor?: number;
  devminor?: number;
  /** Where the writer put a file's data. */
  data?: Data;
}

export class FsTree<Data> {
  readonly root: FsNode<Data>;

  constructor(mtime: number) {
    this.root = {kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, nlink: 1, size: 0, children: new Map()};
  }

  /**
   * Adds an entry (a file's content is consumed by `store`, which returns where it went); a
   * hard link names an existing node.
   */
  async add(entry: Entry, store: (entry: Entry) => Promise<Data>, what: string): Promise<void> {
    const {parent, name} = this.parentOf(entry.path, what);
    if (entry.type === 'hardlink') {
      const target = this.lookup(entry.linkname ?? '');
      if (!target || target.kind === 'dir') throw new TskitError(`${what}: hard link ${entry.path} names ${entry.linkname ?? '(nothing)'}, which is not a file earlier in the image`);
      const previous = parent.children!.get(name);
      if (previous === target) return;
      if (previous) previous.nlink--;
      target.nlink++;
      parent.children!.set(name, target);
      return;
    }
    const previous = parent.children!.get(name);
    if (entry.type === 'dir' && previous?.kind === 'dir') {
      // the first wins for a directory's attributes, as in the assembled stream
      return;
    }
    // a symlink's own mode means nothing to Linux, which reads back 0777; mksquashfs and
    // mkfs.erofs store what lstat says of the unpacked tree, so do the same
    const mode = entry.type === 'symlink' ? 0o777 : entry.mode & 0o7777;
    const node: FsNode<Data> = {kind: entry.type, mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, nlink: 1, size: 0};
    if (entry.xattrs && Object.keys(entry.xattrs).length > 0) node.xattrs = entry.xattrs;
    if (entry.type === 'dir') node.children = new Map();
    else if (entry.type === 'symlink') {
      node.target = entry.linkname ?? '';
      node.size = Buffer.byteLength(node.target);
    } else if (entry.type === 'char' || entry.type === 'block') {
      node.devmajor = entry.devmajor ?? 0;
      node.devminor = entry.devminor ?? 0;
    } else if (entry.type === 'file') {
      node.size = entry.size;
      node.data = await store(entry);
    }
    if (previous) previous.nlink--;
    parent.children!.set(name, node);
  }

  lookup(path: string): FsNode<Data> | undefined {
    let node: FsNode<Data> | undefined = this.root;
    for (const part of path.split('/').filter((p) => p !== '' && p !== '.')) {
      node = node?.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  private parentOf(path: string, what: string): {parent: FsNode<Data>; name: string} {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    const name = parts.pop();
    if (name === undefined) throw new TskitError(`${what}: an entry names the root directory`);
    const parent = this.lookup(parts.join('/'));
    if (!parent || parent.kind !== 'dir') throw new TskitError(`${what}: ${path} comes before its directory ${parts.join('/') || '/'}`);
    return {parent, name};
  }
}

/** A directory's entries in byte order of their names (how squashfs and erofs look names up). */
export function sortedChildren<Data>(dir: FsNode<Data>): Array<[Buffer, FsNode<Data>]> {
  return [...dir.children!.entries()].map(([name, node]) => [Buffer.from(name), node] as [Buffer, FsNode<Data>]).sort((a, b) => Buffer.compare(a[0], b[0]));
}

/** Linux's new_encode_dev: how squashfs and erofs store a device number. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}
