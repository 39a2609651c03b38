// The root filesystem as an ISO 9660 image with Rock Ridge (LinuxKit's kernel+iso, which runs
// `genisoimage -l -J -R -V LinuxKit` on its tar): Linux mounts it as a root (root=/dev/sr0)
// with every name, mode, owner, time, symlink, device and hard link, read from the Rock Ridge
// entries (PX, TF, NM, SL, PN; SP and ER on the root). The ISO 9660 names are generated
// (unique per directory) and only Rock Ridge readers see the real ones; no Joliet tree.
// File data is written as the entries arrive, from sector 18; the directories, continuation
// areas and path tables follow it, and the volume descriptor is written last at sector 16.
import type {Entry} from '../build/entry.ts';
import {TskitError} from '../errors.ts';
import {FsTree, sortedChildren, type FsNode} from './fs-tree.ts';
import {fixedBlocks, ImageFile} from './image-file.ts';

const SECTOR = 2048;
const FIRST_DATA = 18;
const S_IF = {file: 0o100000, dir: 0o040000, char: 0o020000, block: 0o060000, fifo: 0o010000, symlink: 0o120000} as const;

interface FileData {
  sector: number;
}
type Node = FsNode<FileData>;

export interface RootfsIsoOptions {
  mtime: number;
  volumeId?: string;
  signal?: AbortSignal;
  progress?(bytes: number): void;
  what?: string;
}

export async function writeRootfsIso(entries: AsyncIterable<Entry>, path: string, options: RootfsIsoOptions): Promise<{size: number; sha256: string}> {
  const what = options.what ?? path;
  const file = await ImageFile.create(path);
  try {
    await file.append(Buffer.alloc(FIRST_DATA * SECTOR)); // system area, descriptor, terminator
    const tree = new FsTree<FileData>(options.mtime);
    for await (const entry of entries) {
      options.signal?.throwIfAborted();
      await tree.add(
        entry,
        async (e) => {
          if (e.size >= 2 ** 32) throw new TskitError(`${what}: ${e.path} is 4 GiB or more, which one ISO 9660 extent cannot hold`);
          const sector = file.position / SECTOR;
          for await (const chunk of fixedBlocks(e.content ?? [], 1 << 20)) await file.append(chunk);
          await file.pad(SECTOR);
          options.progress?.(file.position);
          return {sector: e.size === 0 ? 0 : sector};
        },
        what,
      );
    }
    await writeTables(file, tree, options.mtime, options.volumeId ?? 'LinuxKit', what);
    return await file.finish();
  } catch (error) {
    await file.abandon();
    throw error;
  }
}

interface Dir {
  node: Node;
  parent: Dir | undefined;
  /** ISO 9660 identifier (in the parent). */
  id: string;
  children: Array<{name: Buffer; node: Node; id: string}>;
  sector: number;
  size: number;
  number: number;
}

async function writeTables(file: ImageFile, tree: FsTree<FileData>, mtime: number, volumeId: string, what: string): Promise<void> {
  // Directories in path-table order (by level, then parent, then identifier).
  const dirs: Dir[] = [];
  const byNode = new Map<Node, Dir>();
  const root: Dir = {node: tree.root, parent: undefined, id: '\0', children: [], sector: 0, size: 0, number: 1};
  dirs.push(root);
  byNode.set(tree.root, root);
  for (let i = 0; i < dirs.length; i++) {
    const dir = dirs[i]!;
    dir.children = sortedChildren(dir.node).map(([name, node], n) => ({name, node, id: node.kind === 'dir' ? isoId(n) : `${isoId(n)}.;1`}));
    for (const child of dir.children) {
      if (child.node.kind !== 'dir') continue;
      if (byNode.has(child.node)) throw new TskitError(`${what}: a directory appears twice`);
      const sub: Dir = {node: child.node, parent: dir, id: child.id, children: [], sector: 0, size: 0, number: dirs.length + 1};
      dirs.push(sub);
      byNode.set(child.node, sub);
    }
  }

  const ce = new Continuations();
  // Sizes first (they depend on names and attributes only), then places.
  const records = (dir: Dir, place: boolean): Buffer[] => {
    const out: Buffer[] = [];
    const self = susp(dir.node, undefined, dir === root, ce, what);
    out.push(record('\0', place ? dir.sector : 0, place ? dir.size : 0, true, dir.node.mtime, self));
    const parent = dir.parent ?? dir;
    out.push(record('\x01', place ? parent.sector : 0, place ? parent.size : 0, true, parent.node.mtime, susp(parent.node, undefined, false, ce, what)));
    for (const child of dir.children) {
      const sub = byNode.get(child.node);
      const extent = child.node.kind === 'dir' ? (place ? sub!.sector : 0) : child.node.kind === 'file' ? child.node.data!.sector : 0;
      const size = child.node.kind === 'dir' ? (place ? sub!.size : 0) : child.node.kind === 'file' ? child.node.size : 0;
      out.push(record(child.id, extent, size, child.node.kind === 'dir', child.node.mtime, susp(child.node, child.name, false, ce, what)));
    }
    return out;
  };
  for (const dir of dirs) dir.size = packed(records(dir, false)).length;
  let next = file.position / SECTOR;
  for (const dir of dirs) {
    dir.sector = next;
    next += dir.size / SECTOR;
  }
  ce.start = next;
  ce.reset();
  for (const dir of dirs) {
    const bytes = packed(records(dir, true));
    if (bytes.length !== dir.size) throw new Error('rootfs iso: a directory changed size');
    await file.append(bytes);
  }
  await file.append(ce.bytes());
  await file.pad(SECTOR);

  const tables = [false, true].map((bigEndian) => pathTable(dirs, bigEndian));
  const lTable = file.position / SECTOR;
  await file.append(tables[0]!);
  await file.pad(SECTOR);
  const mTable = file.position / SECTOR;
  await file.append(tables[1]!);
  await file.pad(SECTOR);
  const total = file.position / SECTOR;

  const pvd = Buffer.alloc(2 * SECTOR);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.fill(0x20, 8, 72);
  pvd.write(volumeId.slice(0, 32), 40, 'latin1');
  both32(pvd, 80, total);
  both16(pvd, 120, 1);
  both16(pvd, 124, 1);
  both16(pvd, 128, SECTOR);
  both32(pvd, 132, tables[0]!.length);
  pvd.writeUInt32LE(lTable, 140);
  pvd.writeUInt32BE(mTable, 148);
  record('\0', root.sector, root.size, true, tree.root.mtime, Buffer.alloc(0)).copy(pvd, 156);
  pvd.fill(0x20, 190, 813);
  pvd.write(longDate(mtime), 813, 'latin1');
  pvd.write(longDate(mtime), 830, 'latin1');
  pvd.write('0000000000000000', 847, 'latin1');
  pvd.write('0000000000000000', 864, 'latin1');
  pvd[881] = 1;
  pvd[SECTOR] = 0xff; // the terminator
  pvd.write('CD001', SECTOR + 1, 'latin1');
  pvd[SECTOR + 6] = 1;
  await file.writeAt(pvd, 16 * SECTOR);
}

/** Unique, sortable ISO 9660 names: what Rock Ridge readers never show. */
function isoId(n: number): string {
  return `F${String(n + 1).padStart(7, '0')}`;
}

function record(id: string, extent: number, size: number, directory: boolean, mtime: number, su: Buffer): Buffer {
  const idLength = Buffer.byteLength(id, 'latin1');
  const base = 33 + idLength + (idLength % 2 === 0 ? 1 : 0);
  const length = base + su.length + ((base + su.length) % 2);
  if (length > 255) throw new Error('rootfs iso: directory record too long');
  const b = Buffer.alloc(length);
  b[0] = length;
  both32(b, 2, extent);
  both32(b, 10, size);
  recordDate(mtime).copy(b, 18);
  b[25] = directory ? 2 : 0;
  both16(b, 28, 1);
  b[32] = idLength;
  b.write(id, 33, 'latin1');
  su.copy(b, base);
  return b;
}

/** Directory records into sectors: a record never crosses a sector boundary. */
function packed(records: Buffer[]): Buffer {
  const sectors: Buffer[] = [];
  let current = Buffer.alloc(SECTOR);
  let at = 0;
  for (const r of records) {
    if (at + r.length > SECTOR) {
      sectors.push(current);
      current = Buffer.alloc(SECTOR);
      at = 0;
    }
    r.copy(current, at);
    at += r.length;
  }
  sectors.push(current);
  return Buffer.concat(sectors);
}

/** Continuation areas (CE): System Use data that does not fit its record, never across a sector. */
class Continuations {
  start = 0;
  private parts: Buffer[] = [];
  private used = 0;

  reset(): void {
    this.parts = [];
    this.used = 0;
  }

  /** Places `data`; returns its sector and offset. */
  add(data: Buffer): {sector: number; offset: number} {
    if (data.length > SECTOR) throw new Error('rootfs iso: continuation area too long');
    const inSector = this.used % SECTOR;
    if (inSector + data.length > SECTOR) {
      this.parts.push(Buffer.alloc(SECTOR - inSector));
      this.used += SECTOR - inSector;
    }
    const at = {sector: this.start + Math.floor(this.used / SECTOR), offset: this.used % SECTOR};
    this.parts.push(data);
    this.used += data.length;
    return at;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The Rock Ridge System Use entries of one directory record. */
function susp(node: Node, name: Buffer | undefined, isRoot: boolean, ce: Continuations, what: string): Buffer {
  const entries: Buffer[] = [];
  if (isRoot) {
    entries.push(Buffer.from([0x53, 0x50, 7, 1, 0xbe, 0xef, 0])); // SP
    const id = Buffer.from('RRIP_1991A');
    const er = Buffer.alloc(8 + id.length);
    er.write('ER', 0, 'latin1');
    er[2] = er.length;
    er[3] = 1;
    er[4] = id.length;
    er[7] = 1;
    id.copy(er, 8);
    entries.push(er);
  }
  const px = Buffer.alloc(36);
  px.write('PX', 0, 'latin1');
  px[2] = 36;
  px[3] = 1;
  const nlink = node.kind === 'dir' ? 2 + [...node.children!.values()].filter((c) => c.kind === 'dir').length : node.nlink;
  both32(px, 4, S_IF[node.kind] | node.mode);
  both32(px, 12, nlink);
  both32(px, 20, node.uid);
  both32(px, 28, node.gid);
  entries.push(px);
  const tf = Buffer.alloc(12);
  tf.write('TF', 0, 'latin1');
  tf[2] = 12;
  tf[3] = 1;
  tf[4] = 0x02; // modify time
  recordDate(node.mtime).copy(tf, 5);
  entries.push(tf);
  if (node.kind === 'char' || node.kind === 'block') {
    const pn = Buffer.alloc(20);
    pn.write('PN', 0, 'latin1');
    pn[2] = 20;
    pn[3] = 1;
    both32(pn, 4, node.devmajor ?? 0);
    both32(pn, 12, node.devminor ?? 0);
    entries.push(pn);
  }
  const long: Buffer[] = [];
  if (name) {
    if (name.length > 250) throw new TskitError(`${what}: ${name.toString()}: names of more than 250 bytes are not written`);
    const nm = Buffer.alloc(5 + name.length);
    nm.write('NM', 0, 'latin1');
    nm[2] = nm.length;
    nm[3] = 1;
    name.copy(nm, 5);
    long.push(nm);
  }
  if (node.kind === 'symlink') long.push(symlinkEntry(node.target ?? '', what));
  const inline = Buffer.concat(entries);
  const rest = Buffer.concat(long);
  // a record holds 255 bytes: the identifier (<= 12 here) and 34 more leave ~200 for System Use
  if (inline.length + rest.length <= 200) return Buffer.concat([inline, rest]);
  const at = ce.add(rest);
  const ceEntry = Buffer.alloc(28);
  ceEntry.write('CE', 0, 'latin1');
  ceEntry[2] = 28;
  ceEntry[3] = 1;
  both32(ceEntry, 4, at.sector);
  both32(ceEntry, 12, at.offset);
  both32(ceEntry, 20, rest.length);
  return Buffer.concat([inline, ceEntry]);
}

/** SL: the target as components (root, '.', '..', names). */
function symlinkEntry(target: string, what: string): Buffer {
  const components: Buffer[] = [];
  if (target.startsWith('/')) components.push(Buffer.from([0x08, 0]));
  for (const part of target.split('/')) {
    if (part === '') continue;
    if (part === '.') components.push(Buffer.from([0x02, 0]));
    else if (part === '..') components.push(Buffer.from([0x04, 0]));
    else {
      const bytes = Buffer.from(part);
      if (bytes.length > 248) throw new TskitError(`${what}: symlink target ${target}: a component of more than 248 bytes is not written`);
      components.push(Buffer.concat([Buffer.from([0, bytes.length]), bytes]));
    }
  }
  const body = Buffer.concat(components);
  if (body.length > 250) throw new TskitError(`${what}: symlink target ${target} is too long for one Rock Ridge SL entry`);
  const head = Buffer.from([0x53, 0x4c, 5 + body.length, 1, 0]);
  return Buffer.concat([head, body]);
}

function pathTable(dirs: Dir[], bigEndian: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const dir of dirs) {
    const id = dir === dirs[0] ? '\0' : dir.id;
    const b = Buffer.alloc(8 + id.length + (id.length % 2));
    b[0] = id.length;
    if (bigEndian) {
      b.writeUInt32BE(dir.sector, 2);
      b.writeUInt16BE(dir.parent?.number ?? 1, 6);
    } else {
      b.writeUInt32LE(dir.sector, 2);
      b.writeUInt16LE(dir.parent?.number ?? 1, 6);
    }
    b.write(id, 8, 'latin1');
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function recordDate(mtime: number): Buffer {
  const d = new Date(mtime * 1000);
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}

function longDate(mtime: number): string {
  const d = new Date(mtime * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}00`;
}

function both16(b: Buffer, at: number, value: number): void {
  b.writeUInt16LE(value, at);
  b.writeUInt16BE(value, at + 2);
}

function both32(b: Buffer, at: number, value: number): void {
  b.writeUInt32LE(value >>> 0, at);
  b.writeUInt32BE(value >>> 0, at + 4);
}
