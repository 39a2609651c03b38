// A squashfs 4.0 filesystem written from the assembled entry stream, laid out as `mksquashfs DIR OUT`
// makes it by default (what LinuxKit's kernel+squashfs format runs): gzip (zlib, level 6) compression,
// 128 KiB blocks, tail ends packed into fragments, all-zero blocks stored as sparse, xattrs in
// the user/trusted/security namespaces, the image padded to 4 KiB. File data is compressed on
// libuv's thread pool and written as it arrives; the inode, directory, fragment, id and xattr
// tables are built from the metadata kept per path and written at the end, followed by the
// superblock at offset 0. Duplicate files share one copy, as mksquashfs does. Not written:
// an NFS export table.
// Format reference: the kernel's fs/squashfs (squashfs_fs.h).
import {createHash} from 'node:crypto';
import {promisify} from 'node:util';
import {deflate, deflateSync} from 'node:zlib';
import type {Entry} from '../build/entry.ts';
import {TskitError} from '../errors.ts';
import {encodeDev, FsTree, sortedChildren, type FsNode} from './fs-tree.ts';
import {fixedBlocks, ImageFile} from './image-file.ts';

const deflateAsync = promisify(deflate);

export const SQUASHFS_BLOCK_SIZE = 128 * 1024;
const METADATA_SIZE = 8192;
const MAGIC = 0x73717368;
const NO_TABLE = 0xffffffffffffffffn;
const NO_FRAGMENT = 0xffffffff;
const NO_XATTR = 0xffffffff;
const UNCOMPRESSED_BLOCK = 1 << 24;
const UNCOMPRESSED_METADATA = 0x8000;
const FLAG_NO_XATTRS = 0x200;
const FLAG_DUPLICATES = 0x40;
const ZLIB = 1;
const IN_FLIGHT = 8;

const TYPE = {dir: 1, file: 2, symlink: 3, block: 4, char: 5, fifo: 6} as const;
const EXTENDED = 7;

export interface SquashfsOptions {
  /** mkfs time and the root directory's mtime (SOURCE_DATE_EPOCH). */
  mtime: number;
  /** zlib level (default 6: on the hello image level 9, mksquashfs's, is 4x slower for 0.3% less). */
  level?: number;
  signal?: AbortSignal;
  progress?(bytes: number): void;
  /** Names the output in errors. */
  what?: string;
}

interface FileData {
  start: number;
  blocks: number[];
  fragment: number;
  fragmentOffset: number;
  sparse: number;
}

type Node = FsNode<FileData>;

interface Placed {
  /** The inode's reference: metadata block start << 16 | offset in the block. */
  block: number;
  offset: number;
  number: number;
}

/** Writes the entries as a squashfs image at `path`; returns its size and sha256. */
export async function writeSquashfs(entries: AsyncIterable<Entry>, path: string, options: SquashfsOptions): Promise<{size: number; sha256: string}> {
  const what = options.what ?? path;
  const level = options.level ?? 6;
  const file = await ImageFile.create(path);
  try {
    await file.append(Buffer.alloc(96)); // the superblock, written last
    const data = new DataWriter(file, level, options.progress);
    const tree = new FsTree<FileData>(options.mtime);
    for await (const entry of entries) {
      options.signal?.throwIfAborted();
      await tree.add(entry, (e) => data.storeFile(e), what);
    }
    await data.finish();
    options.signal?.throwIfAborted();
    await writeTables(file, tree, data.fragments, options.mtime, level, what);
    await file.pad(4096);
    return await file.finish();
  } catch (error) {
    await file.abandon();
    throw error;
  }
}

/** Data and fragment blocks, compressed several at a time and written in order. */
class DataWriter {
  readonly fragments: Array<{start: number; size: number}> = [];
  private readonly queue: Array<{result: Promise<{stored: Buffer; compressed: boolean}>; place(position: number, size: number): void}> = [];
  private fragment = Buffer.alloc(SQUASHFS_BLOCK_SIZE);
  private fragmentFill = 0;
  /** Content (size and sha256) to where it went, for duplicate files. */
  private readonly seen = new Map<string, FileData>();

  private readonly file: ImageFile;
  private readonly level: number;
  private readonly progress: ((bytes: number) => void) | undefined;

  constructor(file: ImageFile, level: number, progress?: (bytes: number) => void) {
    this.file = file;
    this.level = level;
    this.progress = progress;
  }

  async storeFile(entry: Entry): Promise<FileData> {
    const data: FileData = {start: 0, blocks: [], fragment: NO_FRAGMENT, fragmentOffset: 0, sparse: 0};
    const hash = createHash('sha256');
    let seen = 0;
    let started = false;
    let tail: Buffer | undefined;
    for await (const block of fixedBlocks(entry.content ?? [], SQUASHFS_BLOCK_SIZE)) {
      seen += block.length;
      hash.update(block);
      if (block.length < SQUASHFS_BLOCK_SIZE) {
        tail = block;
        break;
      }
      const index = data.blocks.length;
      data.blocks.push(0);
      if (isZero(block)) {
        data.sparse += block.length;
        continue;
      }
      const first = !started;
      started = true;
      await this.enqueue(block, (position, size) => {
        if (first) data.start = position;
        data.blocks[index] = size;
      });
    }
    if (seen !== entry.size) throw new TskitError(`${entry.path}: the entry says ${entry.size} bytes but its content has ${seen}`);
    if (seen === 0) return data;
    // As mksquashfs: a file whose bytes an earlier file already has shares that file's blocks
    // and fragment. Its own blocks are the last thing written (its tail is not placed yet),
    // so they are taken back.
    const key = `${seen}:${hash.digest('hex')}`;
    const earlier = this.seen.get(key);
    if (earlier) {
      if (started) {
        await this.drain();
        await this.file.truncate(data.start);
      }
      return earlier; // shared: its block sizes are filled in as its blocks are written
    }
    if (tail) await this.addTail(tail, data);
    this.seen.set(key, data);
    return data;
  }

  /** Writes every block still compressing. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) await this.writeOne();
  }

  private async addTail(tail: Buffer, data: FileData): Promise<void> {
    if (this.fragmentFill + tail.length > SQUASHFS_BLOCK_SIZE) await this.flushFragment();
    data.fragment = this.fragments.length;
    data.fragmentOffset = this.fragmentFill;
    tail.copy(this.fragment, this.fragmentFill);
    this.fragmentFill += tail.length;
  }

  private async flushFragment(): Promise<void> {
    if (this.fragmentFill === 0) return;
    const entry = {start: 0, size: 0};
    this.fragments.push(entry);
    const block = this.fragment.subarray(0, this.fragmentFill);
    this.fragment = Buffer.alloc(SQUASHFS_BLOCK_SIZE);
    this.fragmentFill = 0;
    await this.enqueue(block, (position, size) => {
      entry.start = position;
      entry.size = size;
    });
  }

  private async enqueue(raw: Buffer, place: (position: number, size: number) => void): Promise<void> {
    const result = deflateAsync(raw, {level: this.level}).then((packed) => (packed.length < raw.length ? {stored: packed, compressed: true} : {stored: raw, compressed: false}));
    result.catch(() => {});
    this.queue.push({result, place: (position, size) => place(position, size)});
    while (this.queue.length >= IN_FLIGHT) await this.writeOne();
  }

  private async writeOne(): Promise<void> {
    const next = this.queue.shift()!;
    const {stored, compressed} = await next.result;
    next.place(this.file.position, stored.length | (compressed ? 0 : UNCOMPRESSED_BLOCK));
    await this.file.append(stored);
    this.progress?.(this.file.position);
  }

  async finish(): Promise<void> {
    await this.flushFragment();
    await this.drain();
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i += 8192) {
    const end = Math.min(block.length, i + 8192);
    if (!block.subarray(i, end).equals(ZERO.subarray(0, end - i))) return false;
  }
  return true;
}
const ZERO = Buffer.alloc(8192);

/** A metadata table: 8 KiB blocks, each compressed (when that helps) behind a 2-byte header. */
class MetadataWriter {
  private readonly blocks: Buffer[] = [];
  /** Compressed bytes so far: the start of the block being filled. */
  written = 0;
  private pending = Buffer.alloc(METADATA_SIZE);
  private fill = 0;

  private readonly level: number;

  constructor(level: number) {
    this.level = level;
  }

  where(): {block: number; offset: number} {
    return {block: this.written, offset: this.fill};
  }

  append(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(METADATA_SIZE - this.fill, bytes.length - at);
      bytes.copy(this.pending, this.fill, at, at + n);
      this.fill += n;
      at += n;
      if (this.fill === METADATA_SIZE) this.flush();
    }
  }

  private flush(): void {
    if (this.fill === 0) return;
    const raw = this.pending.subarray(0, this.fill);
    const packed = deflateSync(raw, {level: this.level});
    const header = Buffer.alloc(2);
    const stored = packed.length < raw.length ? packed : Buffer.from(raw);
    header.writeUInt16LE(stored.length | (stored === packed ? 0 : UNCOMPRESSED_METADATA));
    this.blocks.push(header, stored);
    this.written += 2 + stored.length;
    this.pending = Buffer.alloc(METADATA_SIZE);
    this.fill = 0;
  }

  /** The table's bytes and the start of each block (relative to the table), for index tables. */
  finish(): {bytes: Buffer; starts: number[]} {
    this.flush();
    const starts: number[] = [];
    let at = 0;
    for (let i = 0; i < this.blocks.length; i += 2) {
      starts.push(at);
      at += this.blocks[i]!.length + this.blocks[i + 1]!.length;
    }
    return {bytes: Buffer.concat(this.blocks), starts};
  }
}

const XATTR_PREFIXES: Array<[string, number]> = [
  ['user.', 0],
  ['trusted.', 1],
  ['security.', 2],
];

async function writeTables(file: ImageFile, tree: FsTree<FileData>, fragments: Array<{start: number; size: number}>, mtime: number, level: number, what: string): Promise<void> {
  // Inode numbers in the order the inodes are written: a directory's subdirectories, then its
  // other entries, then the directory itself, so every reference is known when it is written.
  const numbers = new Map<Node, number>();
  const parents = new Map<Node, Node>();
  const number = (dir: Node): void => {
    const children = sortedChildren(dir);
    for (const [, child] of children) {
      if (child.kind === 'dir') {
        parents.set(child, dir);
        number(child);
      }
    }
    for (const [, child] of children) if (child.kind !== 'dir' && !numbers.has(child)) numbers.set(child, numbers.size + 1);
    numbers.set(dir, numbers.size + 1);
  };
  number(tree.root);
  const inodeCount = numbers.size;

  const ids = new Map<number, number>();
  const idOf = (id: number): number => {
    let index = ids.get(id);
    if (index === undefined) {
      index = ids.size;
      if (index > 0xffff) throw new TskitError(`${what}: more than 65536 distinct uids and gids, squashfs's limit`);
      ids.set(id, index);
    }
    return index;
  };

  const xattrs = new XattrTable(level);
  const inodes = new MetadataWriter(level);
  const dirs = new MetadataWriter(level);
  const placed = new Map<Node, Placed>();

  const header = (node: Node, type: number): Buffer => {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(type, 0);
    b.writeUInt16LE(node.mode & 0o7777, 2);
    b.writeUInt16LE(idOf(node.uid), 4);
    b.writeUInt16LE(idOf(node.gid), 6);
    b.writeUInt32LE(node.mtime >>> 0, 8);
    b.writeUInt32LE(numbers.get(node)!, 12);
    return b;
  };

  const writeInode = (node: Node, body: (xattr: number) => {type: number; bytes: Buffer}): void => {
    const xattr = node.xattrs ? xattrs.add(node.xattrs) : NO_XATTR;
    const {type, bytes} = body(xattr);
    const at = inodes.where();
    placed.set(node, {...at, number: numbers.get(node)!});
    inodes.append(Buffer.concat([header(node, type), bytes]));
  };

  const writeLeaf = (node: Node): void => {
    writeInode(node, (xattr) => {
      switch (node.kind) {
        case 'file':
          return fileInode(node, xattr);
        case 'symlink': {
          const target = Buffer.from(node.target ?? '');
          const extended = xattr !== NO_XATTR;
          const b = Buffer.alloc(8 + target.length + (extended ? 4 : 0));
          b.writeUInt32LE(node.nlink, 0);
          b.writeUInt32LE(target.length, 4);
          target.copy(b, 8);
          if (extended) b.writeUInt32LE(xattr, 8 + target.length);
          return {type: TYPE.symlink + (extended ? EXTENDED : 0), bytes: b};
        }
        case 'char':
        case 'block': {
          const extended = xattr !== NO_XATTR;
          const b = Buffer.alloc(extended ? 12 : 8);
          b.writeUInt32LE(node.nlink, 0);
          b.writeUInt32LE(encodeDev(node.devmajor ?? 0, node.devminor ?? 0), 4);
          if (extended) b.writeUInt32LE(xattr, 8);
          return {type: TYPE[node.kind] + (extended ? EXTENDED : 0), bytes: b};
        }
        case 'fifo': {
          const extended = xattr !== NO_XATTR;
          const b = Buffer.alloc(extended ? 8 : 4);
          b.writeUInt32LE(node.nlink, 0);
          if (extended) b.writeUInt32LE(xattr, 4);
          return {type: TYPE.fifo + (extended ? EXTENDED : 0), bytes: b};
        }
        default:
          throw new Error(`unexpected ${node.kind}`);
      }
    });
  };

  const writeDir = (dir: Node): void => {
    const children = sortedChildren(dir);
    for (const [, child] of children) if (child.kind === 'dir') writeDir(child);
    for (const [, child] of children) if (child.kind !== 'dir' && !placed.has(child)) writeLeaf(child);

    const listingAt = dirs.where();
    const listing = directoryListing(children, placed);
    dirs.append(listing);
    const subdirs = children.filter(([, c]) => c.kind === 'dir').length;
    const parent = parents.get(dir);
    const parentNumber = parent ? numbers.get(parent)! : inodeCount + 1;
    const fileSize = listing.length + 3;
    writeInode(dir, (xattr) => {
      if (fileSize <= 0xffff && xattr === NO_XATTR) {
        const b = Buffer.alloc(16);
        b.writeUInt32LE(listingAt.block, 0);
        b.writeUInt32LE(2 + subdirs, 4);
        b.writeUInt16LE(fileSize, 8);
        b.writeUInt16LE(listingAt.offset, 10);
        b.writeUInt32LE(parentNumber, 12);
        return {type: TYPE.dir, bytes: b};
      }
      const b = Buffer.alloc(24);
      b.writeUInt32LE(2 + subdirs, 0);
      b.writeUInt32LE(fileSize, 4);
      b.writeUInt32LE(listingAt.block, 8);
      b.writeUInt32LE(parentNumber, 12);
      b.writeUInt16LE(0, 16); // no directory index: lookups scan the listing
      b.writeUInt16LE(listingAt.offset, 18);
      b.writeUInt32LE(xattr, 20);
      return {type: TYPE.dir + EXTENDED, bytes: b};
    });
  };
  writeDir(tree.root);
  const root = placed.get(tree.root)!;

  const inodeTable = inodes.finish();
  const dirTable = dirs.finish();
  const inodeTableStart = file.position;
  await file.append(inodeTable.bytes);
  const directoryTableStart = file.position;
  await file.append(dirTable.bytes);

  const fragmentTableStart = fragments.length > 0 ? await writeIndexedTable(file, level, fragments.map(fragmentEntry)) : NO_TABLE;
  const idTableStart = await writeIndexedTable(file, level, [...ids.keys()].map((id) => u32(id)));
  const xattrTableStart = xattrs.count > 0 ? await xattrs.write(file) : NO_TABLE;
  const bytesUsed = file.position;

  const sb = Buffer.alloc(96);
  sb.writeUInt32LE(MAGIC, 0);
  sb.writeUInt32LE(inodeCount, 4);
  sb.writeUInt32LE(mtime >>> 0, 8);
  sb.writeUInt32LE(SQUASHFS_BLOCK_SIZE, 12);
  sb.writeUInt32LE(fragments.length, 16);
  sb.writeUInt16LE(ZLIB, 20);
  sb.writeUInt16LE(Math.log2(SQUASHFS_BLOCK_SIZE), 22);
  sb.writeUInt16LE(FLAG_DUPLICATES | (xattrs.count > 0 ? 0 : FLAG_NO_XATTRS), 24);
  sb.writeUInt16LE(ids.size, 26);
  sb.writeUInt16LE(4, 28);
  sb.writeUInt16LE(0, 30);
  sb.writeBigUInt64LE((BigInt(root.block) << 16n) | BigInt(root.offset), 32);
  sb.writeBigUInt64LE(BigInt(bytesUsed), 40);
  sb.writeBigUInt64LE(BigInt(idTableStart), 48);
  sb.writeBigUInt64LE(BigInt(xattrTableStart), 56);
  sb.writeBigUInt64LE(BigInt(inodeTableStart), 64);
  sb.writeBigUInt64LE(BigInt(directoryTableStart), 72);
  sb.writeBigUInt64LE(BigInt(fragmentTableStart), 80);
  sb.writeBigUInt64LE(NO_TABLE, 88); // no export table
  await file.writeAt(sb, 0);
}

function fileInode(node: Node, xattr: number): {type: number; bytes: Buffer} {
  const data = node.data!;
  const blocks = data.blocks;
  const extended = xattr !== NO_XATTR || node.nlink > 1 || node.size > 0xffffffff || data.start > 0xffffffff || data.sparse > 0;
  const list = Buffer.alloc(blocks.length * 4);
  blocks.forEach((size, i) => list.writeUInt32LE(size, i * 4));
  if (!extended) {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(data.start, 0);
    b.writeUInt32LE(data.fragment, 4);
    b.writeUInt32LE(data.fragment === NO_FRAGMENT ? 0 : data.fragmentOffset, 8);
    b.writeUInt32LE(node.size, 12);
    return {type: TYPE.file, bytes: Buffer.concat([b, list])};
  }
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(BigInt(data.start), 0);
  b.writeBigUInt64LE(BigInt(node.size), 8);
  b.writeBigUInt64LE(BigInt(data.sparse), 16);
  b.writeUInt32LE(node.nlink, 24);
  b.writeUInt32LE(data.fragment, 28);
  b.writeUInt32LE(data.fragment === NO_FRAGMENT ? 0 : data.fragmentOffset, 32);
  b.writeUInt32LE(xattr, 36);
  return {type: TYPE.file + EXTENDED, bytes: Buffer.concat([b, list])};
}

/**
 * A directory's listing: runs of entries behind a header naming the metadata block their
 * inodes are in and a base inode number; a new run starts at 256 entries, at another inode
 * block, or when a number is too far from the base for the entry's 16-bit difference.
 */
function directoryListing(children: Array<[Buffer, Node]>, placed: Map<Node, Placed>): Buffer {
  const parts: Buffer[] = [];
  let run: Buffer[] = [];
  let count = 0;
  let runBlock = -1;
  let runBase = 0;
  const close = (): void => {
    if (run.length === 0) return;
    const h = Buffer.alloc(12);
    h.writeUInt32LE(count - 1, 0);
    h.writeUInt32LE(runBlock, 4);
    h.writeUInt32LE(runBase, 8);
    parts.push(h, ...run);
    run = [];
    count = 0;
  };
  for (const [name, node] of children) {
    const at = placed.get(node)!;
    if (count === 256 || at.block !== runBlock || Math.abs(at.number - runBase) > 32767) {
      close();
      runBlock = at.block;
      runBase = at.number;
    }
    if (name.length > 256) throw new TskitError(`${name.toString()}: squashfs names are at most 256 bytes`);
    const e = Buffer.alloc(8);
    e.writeUInt16LE(at.offset, 0);
    e.writeInt16LE(at.number - runBase, 2);
    e.writeUInt16LE(TYPE[node.kind], 4);
    e.writeUInt16LE(name.length - 1, 6);
    run.push(e, name);
    count++;
  }
  close();
  return Buffer.concat(parts);
}

function fragmentEntry(f: {start: number; size: number}): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(f.start), 0);
  b.writeUInt32LE(f.size, 8);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
}

/** Writes fixed-size records as metadata blocks, then the index of their blocks; returns the index's position. */
async function writeIndexedTable(file: ImageFile, level: number, records: Buffer[]): Promise<number> {
  const table = new MetadataWriter(level);
  for (const record of records) table.append(record);
  const {bytes, starts} = table.finish();
  const base = file.position;
  await file.append(bytes);
  const indexAt = file.position;
  const index = Buffer.alloc(starts.length * 8);
  starts.forEach((start, i) => index.writeBigUInt64LE(BigInt(base + start), i * 8));
  await file.append(index);
  return indexAt;
}

/** Extended attributes: each distinct set once in the key/value table, an id per set. */
class XattrTable {
  private readonly kv: MetadataWriter;
  private readonly sets = new Map<string, number>();
  private readonly ids: Buffer[] = [];
  private readonly level: number;

  constructor(level: number) {
    this.level = level;
    this.kv = new MetadataWriter(level);
  }

  get count(): number {
    return this.ids.length;
  }

  /** The id of this set of attributes (NO_XATTR when none is in a namespace squashfs stores). */
  add(attributes: Record<string, Buffer>): number {
    const pairs: Buffer[] = [];
    for (const name of Object.keys(attributes).sort()) {
      const prefix = XATTR_PREFIXES.find(([p]) => name.startsWith(p));
      if (!prefix) continue; // as mksquashfs: other namespaces cannot be stored
      const suffix = Buffer.from(name.slice(prefix[0].length));
      const value = attributes[name]!;
      const b = Buffer.alloc(4 + suffix.length + 4 + value.length);
      b.writeUInt16LE(prefix[1], 0);
      b.writeUInt16LE(suffix.length, 2);
      suffix.copy(b, 4);
      b.writeUInt32LE(value.length, 4 + suffix.length);
      value.copy(b, 8 + suffix.length);
      pairs.push(b);
    }
    if (pairs.length === 0) return NO_XATTR;
    const bytes = Buffer.concat(pairs);
    const key = bytes.toString('base64');
    const known = this.sets.get(key);
    if (known !== undefined) return known;
    const at = this.kv.where();
    this.kv.append(bytes);
    const id = Buffer.alloc(16);
    id.writeBigUInt64LE((BigInt(at.block) << 16n) | BigInt(at.offset), 0);
    id.writeUInt32LE(pairs.length, 8);
    id.writeUInt32LE(bytes.length, 12);
    this.ids.push(id);
    this.sets.set(key, this.ids.length - 1);
    return this.ids.length - 1;
  }

  /** Writes the key/value table, the id table and its header; returns the header's position. */
  async write(file: ImageFile): Promise<number> {
    const kvStart = file.position;
    await file.append(this.kv.finish().bytes);
    const idTable = new MetadataWriter(this.level);
    for (const id of this.ids) idTable.append(id);
    const {bytes, starts} = idTable.finish();
    const idStart = file.position;
    await file.append(bytes);
    const headerAt = file.position;
    const header = Buffer.alloc(16 + starts.length * 8);
    header.writeBigUInt64LE(BigInt(kvStart), 0);
    header.writeUInt32LE(this.ids.length, 8);
    starts.forEach((start, i) => header.writeBigUInt64LE(BigInt(idStart + start), 16 + i * 8));
    await file.append(header);
    return headerAt;
  }
}
