// An EROFS filesystem written from the assembled entry stream: what LinuxKit's kernel+erofs
// format gets from `mkfs.erofs OUT DIR` (uncompressed, 4 KiB blocks). File data is written
// block-aligned as it arrives (plain layout); directories, symlinks and inodes, which need
// every child's node id, are laid out at the end from the metadata kept per path: large
// directories in their own blocks after the data, then the metadata area, root first, each
// inode in its extended form (64 bytes, with its own mtime) followed by its xattrs and, for
// small directories and symlinks, its data inline in the same block. Files are not packed
// inline (every non-empty file starts on a block) and nothing is compressed.
// Format reference: the kernel's fs/erofs/erofs_fs.h.
import {createHash} from 'node:crypto';
import type {Entry} from '../build/entry.ts';
import {TskitError} from '../errors.ts';
import {encodeDev, FsTree, sortedChildren, type FsNode} from './fs-tree.ts';
import {fixedBlocks, ImageFile} from './image-file.ts';

const BLOCK = 4096;
const MAGIC = 0xe0f5e1e2;
const SUPER_OFFSET = 1024;
const INODE_SIZE = 64;
const DIRENT_SIZE = 12;
const FLAT_PLAIN = 0;
const FLAT_INLINE = 2;
const EXTENDED = 1;

const FILE_TYPE = {file: 1, dir: 2, char: 3, block: 4, fifo: 5, symlink: 7} as const;
const S_IF = {file: 0o100000, dir: 0o040000, char: 0o020000, block: 0o060000, fifo: 0o010000, symlink: 0o120000} as const;
const XATTR_INDEX: Array<[string, number]> = [
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
];

export interface ErofsOptions {
  /** Build time (SOURCE_DATE_EPOCH), the root directory's mtime, and the source of the uuid. */
  mtime: number;
  signal?: AbortSignal;
  progress?(bytes: number): void;
  what?: string;
}

interface FileData {
  /** First block of the data (plain layout). */
  block: number;
}

type Node = FsNode<FileData>;

interface Layout {
  node: Node;
  number: number;
  xattrs: Buffer;
  /** Directory blocks or symlink target. */
  data?: Buffer;
  inline: boolean;
  /** For data kept out of line: its first block. */
  block?: number;
  /** Offset of the record in the metadata area (its node id * 32). */
  offset?: number;
}

export async function writeErofs(entries: AsyncIterable<Entry>, path: string, options: ErofsOptions): Promise<{size: number; sha256: string}> {
  const what = options.what ?? path;
  const file = await ImageFile.create(path);
  try {
    await file.append(Buffer.alloc(BLOCK)); // block 0: the superblock at 1024, written last
    const tree = new FsTree<FileData>(options.mtime);
    for await (const entry of entries) {
      options.signal?.throwIfAborted();
      await tree.add(entry, (e) => storeFile(file, e, options.progress), what);
    }
    options.signal?.throwIfAborted();
    await writeMetadata(file, tree, options.mtime, what);
    return await file.finish();
  } catch (error) {
    await file.abandon();
    throw error;
  }
}

async function storeFile(file: ImageFile, entry: Entry, progress?: (bytes: number) => void): Promise<FileData> {
  const block = file.position / BLOCK;
  let seen = 0;
  for await (const chunk of fixedBlocks(entry.content ?? [], 256 * BLOCK)) {
    seen += chunk.length;
    await file.append(chunk);
  }
  if (seen !== entry.size) throw new TskitError(`${entry.path}: the entry says ${entry.size} bytes but its content has ${seen}`);
  await file.pad(BLOCK);
  progress?.(file.position);
  return {block: seen === 0 ? 0 : block};
}

async function writeMetadata(file: ImageFile, tree: FsTree<FileData>, mtime: number, what: string): Promise<void> {
  // Every inode once (hard links share one), root first so its node id fits the superblock's 16 bits.
  const layouts = new Map<Node, Layout>();
  const order: Layout[] = [];
  const parents = new Map<Node, Node>();
  const visit = (node: Node, parent: Node): void => {
    if (layouts.has(node)) return;
    const layout: Layout = {node, number: order.length + 1, xattrs: xattrBody(node.xattrs, what), inline: false};
    layouts.set(node, layout);
    order.push(layout);
    if (node.kind === 'dir') {
      parents.set(node, parent);
      for (const [, child] of sortedChildren(node)) visit(child, node);
    }
  };
  visit(tree.root, tree.root);

  // Sizes first: a directory's blocks depend only on its names, so every record's size is known
  // before any node id is, and the ids can then be assigned in one pass.
  const dirSizes = new Map<Node, number>();
  for (const layout of order) {
    const {node} = layout;
    if (node.kind === 'dir') {
      const size = directorySize(namesOf(node));
      dirSizes.set(node, size);
      layout.inline = INODE_SIZE + layout.xattrs.length + size <= BLOCK;
    } else if (node.kind === 'symlink') {
      const target = Buffer.from(node.target ?? '');
      if (target.length === 0 || target.length >= BLOCK) throw new TskitError(`${what}: a symlink target must be 1 to 4095 bytes, got ${target.length}`);
      layout.data = target;
      layout.inline = INODE_SIZE + layout.xattrs.length + target.length <= BLOCK;
    }
  }

  // Out-of-line data (large directories, long symlinks) goes after the file data.
  let nextBlock = file.position / BLOCK;
  for (const layout of order) {
    if (layout.inline) continue;
    const size = layout.node.kind === 'dir' ? dirSizes.get(layout.node)! : layout.data?.length;
    if (size === undefined) continue;
    layout.block = nextBlock;
    nextBlock += Math.ceil(size / BLOCK);
  }
  const metaBlock = nextBlock;

  // Node ids: 32-byte units from the metadata area's start; a record with inline data is kept
  // within one block (the kernel reads inline data from the inode's block only).
  let at = 0;
  for (const layout of order) {
    const inlineSize = layout.inline ? (layout.node.kind === 'dir' ? dirSizes.get(layout.node)! : layout.data!.length) : 0;
    const size = INODE_SIZE + layout.xattrs.length + inlineSize;
    if (layout.inline && (at % BLOCK) + size > BLOCK) at = Math.ceil(at / BLOCK) * BLOCK;
    layout.offset = at;
    at += Math.ceil(size / 32) * 32;
  }
  const root = layouts.get(tree.root)!;
  if (root.offset !== 0) throw new Error('erofs: the root is not the first inode');

  const nidOf = (node: Node): number => layouts.get(node)!.offset! / 32;
  for (const layout of order) {
    if (layout.node.kind !== 'dir') continue;
    const node = layout.node;
    const entries: Array<[Buffer, number, number]> = [
      [Buffer.from('.'), nidOf(node), FILE_TYPE.dir],
      [Buffer.from('..'), nidOf(parents.get(node)!), FILE_TYPE.dir],
      ...sortedChildren(node).map(([name, child]) => [name, nidOf(child), FILE_TYPE[child.kind]] as [Buffer, number, number]),
    ];
    layout.data = directoryBlocks(entries.sort((a, b) => Buffer.compare(a[0], b[0])), what);
    if (layout.data.length !== dirSizes.get(node)) throw new Error('erofs: directory size changed');
  }

  for (const layout of order) {
    if (layout.inline || layout.data === undefined) continue;
    if (file.position !== layout.block! * BLOCK) throw new Error('erofs: out-of-line data misplaced');
    await file.append(layout.data);
    await file.pad(BLOCK);
  }

  // The metadata area.
  if (file.position !== metaBlock * BLOCK) throw new Error('erofs: metadata area misplaced');
  const meta = Buffer.alloc(Math.ceil(at / BLOCK) * BLOCK);
  for (const layout of order) {
    const record = inodeRecord(layout);
    record.copy(meta, layout.offset!);
  }
  await file.append(meta);
  const blocks = file.position / BLOCK;

  const sb = Buffer.alloc(128);
  sb.writeUInt32LE(MAGIC, 0);
  sb.writeUInt32LE(0, 4); // no checksum (feature_compat SB_CHKSUM unset)
  sb.writeUInt32LE(0, 8);
  sb.writeUInt8(12, 12);
  sb.writeUInt8(0, 13);
  sb.writeUInt16LE(0, 14); // root nid
  sb.writeBigUInt64LE(BigInt(order.length), 16);
  sb.writeBigUInt64LE(BigInt(mtime), 24);
  sb.writeUInt32LE(0, 32);
  sb.writeUInt32LE(blocks, 36);
  sb.writeUInt32LE(metaBlock, 40);
  sb.writeUInt32LE(0, 44); // no shared xattrs
  const uuid = createHash('sha256').update(`tskit erofs ${mtime} ${order.length} ${blocks}`).update(meta).digest().subarray(0, 16);
  uuid[6] = (uuid[6]! & 0x0f) | 0x50;
  uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  uuid.copy(sb, 48);
  await file.writeAt(sb, SUPER_OFFSET);
}

function namesOf(dir: Node): Buffer[] {
  return [Buffer.from('.'), Buffer.from('..'), ...sortedChildren(dir).map(([name]) => name)].sort(Buffer.compare);
}

/** How many bytes a directory's blocks take (the last block only as far as its last name). */
function directorySize(names: Buffer[]): number {
  let full = 0;
  let used = 0;
  for (const name of names) {
    const need = DIRENT_SIZE + name.length;
    if (used + need > BLOCK) {
      full++;
      used = 0;
    }
    used += need;
  }
  return full * BLOCK + used;
}

/** Directory blocks: in each, the dirents (node id, name offset, type) and then their names. */
function directoryBlocks(entries: Array<[Buffer, number, number]>, what: string): Buffer {
  const blocks: Buffer[] = [];
  let current: Array<[Buffer, number, number]> = [];
  let used = 0;
  const close = (last: boolean): void => {
    const size = last ? used : BLOCK;
    const b = Buffer.alloc(size);
    let nameAt = current.length * DIRENT_SIZE;
    current.forEach(([name, nid, type], i) => {
      b.writeBigUInt64LE(BigInt(nid), i * DIRENT_SIZE);
      b.writeUInt16LE(nameAt, i * DIRENT_SIZE + 8);
      b.writeUInt8(type, i * DIRENT_SIZE + 10);
      name.copy(b, nameAt);
      nameAt += name.length;
    });
    blocks.push(b);
    current = [];
    used = 0;
  };
  for (const entry of entries) {
    if (entry[0].length > 255) throw new TskitError(`${what}: ${entry[0].toString()}: EROFS names are at most 255 bytes`);
    const need = DIRENT_SIZE + entry[0].length;
    if (used + need > BLOCK) close(false);
    current.push(entry);
    used += need;
  }
  close(true);
  return Buffer.concat(blocks);
}

function xattrBody(attributes: Record<string, Buffer> | undefined, what: string): Buffer {
  if (!attributes) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const name of Object.keys(attributes).sort()) {
    const index = XATTR_INDEX.find(([prefix]) => (prefix.endsWith('.') ? name.startsWith(prefix) : name === prefix));
    if (!index) continue; // a namespace EROFS has no index for (mkfs.erofs skips these too)
    const suffix = Buffer.from(name.slice(index[0].length));
    const value = attributes[name]!;
    if (suffix.length > 255 || value.length > 0xffff) throw new TskitError(`${what}: xattr ${name} is too large for EROFS`);
    const entry = Buffer.alloc(Math.ceil((4 + suffix.length + value.length) / 4) * 4);
    entry.writeUInt8(suffix.length, 0);
    entry.writeUInt8(index[1], 1);
    entry.writeUInt16LE(value.length, 2);
    suffix.copy(entry, 4);
    value.copy(entry, 4 + suffix.length);
    parts.push(entry);
  }
  if (parts.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.alloc(12), ...parts]); // ibody header: no shared xattrs
}

function inodeRecord(layout: Layout): Buffer {
  const {node} = layout;
  const inline = layout.inline && layout.data ? layout.data : Buffer.alloc(0);
  const b = Buffer.alloc(INODE_SIZE + layout.xattrs.length + inline.length);
  let size = 0;
  let u = 0;
  let datalayout = FLAT_PLAIN;
  let nlink = node.nlink;
  switch (node.kind) {
    case 'file':
      size = node.size;
      u = node.data!.block;
      break;
    case 'dir':
    case 'symlink':
      size = layout.data!.length;
      if (layout.inline) datalayout = FLAT_INLINE;
      else u = layout.block!;
      if (node.kind === 'dir') nlink = 2 + [...node.children!.values()].filter((c) => c.kind === 'dir').length;
      break;
    case 'char':
    case 'block':
      u = encodeDev(node.devmajor ?? 0, node.devminor ?? 0);
      break;
    case 'fifo':
      break;
  }
  b.writeUInt16LE(EXTENDED | (datalayout << 1), 0);
  b.writeUInt16LE(layout.xattrs.length === 0 ? 0 : (layout.xattrs.length - 12) / 4 + 1, 2);
  b.writeUInt16LE(S_IF[node.kind] | (node.mode & 0o7777), 4);
  b.writeBigUInt64LE(BigInt(size), 8);
  b.writeUInt32LE(u >>> 0, 16);
  b.writeUInt32LE(layout.number, 20);
  b.writeUInt32LE(node.uid >>> 0, 24);
  b.writeUInt32LE(node.gid >>> 0, 28);
  b.writeBigUInt64LE(BigInt(node.mtime), 32);
  b.writeUInt32LE(0, 40);
  b.writeUInt32LE(nlink, 44);
  layout.xattrs.copy(b, INODE_SIZE);
  inline.copy(b, INODE_SIZE + layout.xattrs.length);
  return b;
}
