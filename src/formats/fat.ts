// A FAT16/FAT32 volume written from a list of files, per Microsoft's FAT specification
// (fatgen103): boot sector with BPB, FSInfo and backup boot sector (FAT32), two FATs,
// directories with long file names where a name is not plain 8.3, and every file in one
// contiguous run of clusters (boot loaders such as syslinux need their core's sectors to be
// listable, and a contiguous file reads fastest). File data is never held in memory: the
// volume is a list of regions whose file content streams when the extents are produced.
import {TskitError} from '../errors.ts';
import {SECTOR} from './disk.ts';
import {bufferContent, generatedContent, type Content, type Region} from './content.ts';

export type FatType = 16 | 32;

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_ARCHIVE = 0x20;
const ATTR_LFN = 0x0f;

export interface FatFile {
  /** '/'-separated path inside the volume, e.g. EFI/BOOT/BOOTX64.EFI; parents are implied. */
  path: string;
  content: Content;
  /** Extra attributes (read-only, hidden, system); archive is always set. */
  attributes?: number;
}

export interface FatOptions {
  /** Volume size in bytes (a multiple of 512). */
  size: number;
  files: FatFile[];
  /** Sectors before the volume on its disk (its partition's first LBA), for the BPB. */
  hiddenSectors?: number;
  volumeId: number;
  /** Up to 11 characters, stored upper-case. */
  label: string;
  /** Timestamp of every entry, seconds since the epoch (UTC). */
  mtime: number;
  /** Default: FAT32 when the volume has room for 65,525 clusters, else FAT16. */
  type?: FatType;
  /** Rewrites the finished boot sector (e.g. to install a boot loader's code); gets the volume. */
  bootSector?(sector: Buffer, volume: FatVolume): void;
}

export interface FatGeometry {
  type: FatType;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatSectors: number;
  rootDirSectors: number;
  /** First sector of the data region (cluster 2). */
  dataStart: number;
  clusters: number;
  totalSectors: number;
}

export interface FatVolume {
  geometry: FatGeometry;
  /** What the volume holds, at offsets from its first byte. */
  regions: Region[];
  /** First sector (from the volume's start) and sector count of a file's contiguous data. */
  fileSectors(path: string): {first: number; count: number};
}

const FAT32_MIN_CLUSTERS = 65525;
const FAT16_MIN_CLUSTERS = 4085;
const FAT16_ROOT_ENTRIES = 512;

/** The layout a volume of `totalSectors` gets, per fatgen103's arithmetic. */
export function fatGeometry(totalSectors: number, type: FatType, sectorsPerCluster: number): FatGeometry {
  const reservedSectors = type === 32 ? 32 : 1;
  const rootDirSectors = type === 32 ? 0 : (FAT16_ROOT_ENTRIES * 32) / SECTOR;
  const entryBytes = type === 32 ? 4 : 2;
  let fatSectors = 1;
  for (;;) {
    const data = totalSectors - reservedSectors - rootDirSectors - 2 * fatSectors;
    const clusters = Math.floor(data / sectorsPerCluster);
    const needed = Math.ceil(((clusters + 2) * entryBytes) / SECTOR);
    if (needed <= fatSectors) {
      return {type, sectorsPerCluster, reservedSectors, fatSectors, rootDirSectors, dataStart: reservedSectors + 2 * fatSectors + rootDirSectors, clusters, totalSectors};
    }
    fatSectors = needed;
  }
}

/** Picks type and cluster size for a volume: the smallest clusters the type allows. */
export function chooseGeometry(totalSectors: number, type?: FatType): FatGeometry {
  const types: FatType[] = type ? [type] : [32, 16];
  for (const t of types) {
    for (let spc = 1; spc <= 128; spc *= 2) {
      // big FAT32 volumes get 4 KiB clusters, as Windows and mkfs.fat choose
      if (t === 32 && spc < 8 && totalSectors * SECTOR > 260 * 1024 * 1024) continue;
      const g = fatGeometry(totalSectors, t, spc);
      if (t === 32 && g.clusters >= FAT32_MIN_CLUSTERS && g.clusters < 0x0ffffff5) return g;
      if (t === 16 && g.clusters >= FAT16_MIN_CLUSTERS && g.clusters < FAT32_MIN_CLUSTERS) return g;
    }
  }
  throw new TskitError(`a FAT${type ?? ''} volume of ${totalSectors * SECTOR} bytes is not possible (too small or too large)`);
}

/** The smallest volume (bytes, whole MiB) of `type` that holds `files`, with `slack` bytes free. */
export function fatSizeFor(files: FatFile[], type: FatType, slack = 1024 * 1024): number {
  const tree = buildTree(files);
  const fileSectors = files.reduce((sum, file) => sum + Math.ceil(file.content.size / SECTOR), 0);
  const dirSectors = [...directories(tree)].reduce((sum, dir) => sum + Math.ceil(dirBytes(dir) / SECTOR), 0);
  const dataSectors = fileSectors + dirSectors + slack / SECTOR;
  const MiB = 1024 * 1024;
  let size = Math.ceil(((dataSectors + 64) * SECTOR * 1.01) / MiB) * MiB;
  if (type === 32) size = Math.max(size, 34 * MiB);
  for (;;) {
    try {
      const g = chooseGeometry(size / SECTOR, type);
      // every file rounds up to whole clusters
      const needed = files.reduce((sum, f) => sum + Math.ceil(f.content.size / (g.sectorsPerCluster * SECTOR)), 0) + [...directories(tree)].reduce((sum, d) => sum + Math.max(1, Math.ceil(dirBytes(d) / (g.sectorsPerCluster * SECTOR))), 0);
      if (g.clusters * g.sectorsPerCluster * SECTOR >= needed * g.sectorsPerCluster * SECTOR + slack) return size;
    } catch (error) {
      if (!(error instanceof TskitError)) throw error;
    }
    size += MiB;
  }
}

interface DirNode {
  name: string;
  path: string;
  parent: DirNode | undefined;
  children: Map<string, DirNode | FileNode>;
  cluster: number;
  clusters: number;
}

interface FileNode {
  name: string;
  file: FatFile;
  cluster: number;
  clusters: number;
}

const isDir = (node: DirNode | FileNode): node is DirNode => 'children' in node;

function buildTree(files: FatFile[]): DirNode {
  const root: DirNode = {name: '', path: '', parent: undefined, children: new Map(), cluster: 0, clusters: 0};
  for (const file of files) {
    const parts = file.path.split('/').filter(Boolean);
    if (parts.length === 0) throw new Error(`FAT: empty path`);
    let dir = root;
    for (const [i, part] of parts.entries()) {
      checkName(part, file.path);
      const key = part.toUpperCase();
      const existing = dir.children.get(key);
      if (i === parts.length - 1) {
        if (existing) throw new TskitError(`FAT: ${file.path} is given twice (names are case-insensitive)`);
        dir.children.set(key, {name: part, file, cluster: 0, clusters: 0});
      } else if (existing && !isDir(existing)) {
        throw new TskitError(`FAT: ${file.path}: ${part} is a file`);
      } else {
        const next: DirNode = existing ?? {name: part, path: parts.slice(0, i + 1).join('/'), parent: dir, children: new Map(), cluster: 0, clusters: 0};
        dir.children.set(key, next);
        dir = next;
      }
    }
  }
  return root;
}

function* directories(dir: DirNode): Generator<DirNode> {
  yield dir;
  for (const child of dir.children.values()) if (isDir(child)) yield* directories(child);
}

function checkName(name: string, path: string): void {
  if (name.length > 255 || name === '.' || name === '..' || /[\x00-\x1f"*/:<>?\\|\x7f]/.test(name) || /[. ]$/.test(name)) {
    throw new TskitError(`FAT: ${path}: "${name}" is not a valid FAT long file name`);
  }
}

const SHORT_CHARS = /^[A-Z0-9!#$%&'()@^_`{}~-]+$/;

/** The 8.3 form of a name when it has one exactly (upper-case or all lower-case parts), with NT case flags. */
function exactShortName(name: string): {short: Buffer; caseFlags: number} | undefined {
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  if (base.length === 0 || base.length > 8 || ext.length > 3 || (dot > 0 && ext.length === 0) || base.includes('.')) return undefined;
  const caseOf = (part: string): 'upper' | 'lower' | 'mixed' =>
    part === part.toUpperCase() ? 'upper' : part === part.toLowerCase() ? 'lower' : 'mixed';
  const baseCase = caseOf(base);
  const extCase = caseOf(ext);
  if (baseCase === 'mixed' || extCase === 'mixed') return undefined;
  if (!SHORT_CHARS.test(base.toUpperCase()) || (ext && !SHORT_CHARS.test(ext.toUpperCase()))) return undefined;
  const short = Buffer.alloc(11, 0x20);
  short.write(base.toUpperCase(), 0, 'latin1');
  short.write(ext.toUpperCase(), 8, 'latin1');
  return {short, caseFlags: (baseCase === 'lower' ? 0x08 : 0) | (extCase === 'lower' && ext ? 0x10 : 0)};
}

/** A generated 8.3 alias (BASIS~N.EXT) for a long name, unique in its directory. */
function aliasName(name: string, taken: Set<string>): Buffer {
  const clean = (s: string) =>
    s
      .toUpperCase()
      .replace(/[ .]/g, '')
      .replace(/[^A-Z0-9!#$%&'()@^_`{}~-]/g, '_');
  const dot = name.lastIndexOf('.');
  const base = clean(dot > 0 ? name.slice(0, dot) : name) || '_';
  const ext = dot > 0 ? clean(name.slice(dot + 1)).slice(0, 3) : '';
  for (let n = 1; n < 1_000_000; n++) {
    const tail = `~${n}`;
    const short = Buffer.alloc(11, 0x20);
    short.write(base.slice(0, 8 - tail.length) + tail, 0, 'latin1');
    short.write(ext, 8, 'latin1');
    const key = short.toString('latin1');
    if (!taken.has(key)) return short;
  }
  throw new TskitError(`FAT: no free short name for ${name}`);
}

function lfnChecksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short[i]!) & 0xff;
  return sum;
}

interface DirEntryPlan {
  lfn: string | undefined;
  short: Buffer;
  caseFlags: number;
  attributes: number;
  node: DirNode | FileNode;
}

/** Each child's entries in name order (deterministic), with aliases assigned. */
function planEntries(dir: DirNode): DirEntryPlan[] {
  const names = [...dir.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const taken = new Set<string>();
  const plans: DirEntryPlan[] = [];
  // exact 8.3 names first claim their short names, so aliases never collide with them
  for (const node of names) {
    const exact = exactShortName(node.name);
    if (exact) taken.add(exact.short.toString('latin1'));
  }
  for (const node of names) {
    const exact = exactShortName(node.name);
    const attributes = isDir(node) ? ATTR_DIRECTORY : ATTR_ARCHIVE | (node.file.attributes ?? 0);
    if (exact) {
      plans.push({lfn: undefined, short: exact.short, caseFlags: exact.caseFlags, attributes, node});
    } else {
      const short = aliasName(node.name, taken);
      taken.add(short.toString('latin1'));
      plans.push({lfn: node.name, short, caseFlags: 0, attributes, node});
    }
  }
  return plans;
}

function dirBytes(dir: DirNode): number {
  const dots = dir.parent ? 2 : 0;
  const label = dir.parent ? 0 : 1;
  const entries = planEntries(dir).reduce((sum, plan) => sum + 1 + (plan.lfn ? Math.ceil(plan.lfn.length / 13) : 0), 0);
  return (dots + label + entries + 1) * 32; // + an end marker that keeps a full cluster's listing terminated
}

/** DOS date and time (UTC; 1980-01-01 at the earliest). */
export function dosDateTime(seconds: number): {date: number; time: number} {
  const d = new Date(Math.max(seconds, Date.UTC(1980, 0, 1) / 1000) * 1000);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  return {date, time};
}

function shortEntry(out: Buffer, at: number, name: Buffer, attributes: number, caseFlags: number, cluster: number, size: number, stamp: {date: number; time: number}): void {
  name.copy(out, at, 0, 11);
  out[at + 11] = attributes;
  out[at + 12] = caseFlags;
  out[at + 13] = 0; // creation time, tenths
  out.writeUInt16LE(stamp.time, at + 14);
  out.writeUInt16LE(stamp.date, at + 16);
  out.writeUInt16LE(stamp.date, at + 18); // last access date
  out.writeUInt16LE(cluster >>> 16, at + 20);
  out.writeUInt16LE(stamp.time, at + 22);
  out.writeUInt16LE(stamp.date, at + 24);
  out.writeUInt16LE(cluster & 0xffff, at + 26);
  out.writeUInt32LE(size, at + 28);
}

function lfnEntries(out: Buffer, at: number, name: string, checksum: number): number {
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  const count = Math.ceil(units.length / 13);
  if (units.length % 13 !== 0) units.push(0);
  while (units.length % 13 !== 0) units.push(0xffff);
  const slots = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
  for (let k = count; k >= 1; k--) {
    const entry = at + (count - k) * 32;
    out[entry] = k | (k === count ? 0x40 : 0);
    out[entry + 11] = ATTR_LFN;
    out[entry + 12] = 0;
    out[entry + 13] = checksum;
    out.writeUInt16LE(0, entry + 26);
    slots.forEach((slot, j) => out.writeUInt16LE(units[(k - 1) * 13 + j]!, entry + slot));
  }
  return count * 32;
}

/** Lays out a FAT volume: the regions to write and where each file's data landed. */
export function fatVolume(options: FatOptions): FatVolume {
  if (options.size % SECTOR !== 0) throw new Error(`FAT volume size ${options.size} is not a whole number of sectors`);
  const g = chooseGeometry(options.size / SECTOR, options.type);
  const clusterBytes = g.sectorsPerCluster * SECTOR;
  const root = buildTree(options.files);
  const stamp = dosDateTime(options.mtime);

  // Allocation: directories first (root first, breadth in path order), then files in the order given.
  let next = 2;
  const allocate = (bytes: number, atLeastOne: boolean) => {
    const count = Math.max(atLeastOne ? 1 : 0, Math.ceil(bytes / clusterBytes));
    const first = count > 0 ? next : 0;
    next += count;
    return {first, count};
  };
  const dirs = [...directories(root)];
  for (const dir of dirs) {
    if (!dir.parent && g.type === 16) continue; // FAT16's root lives in its fixed area
    const {first, count} = allocate(dirBytes(dir), true);
    dir.cluster = first;
    dir.clusters = count;
  }
  const fileNodes = new Map<string, FileNode>();
  const findFile = (path: string): FileNode => {
    let node: DirNode | FileNode = root;
    for (const part of path.split('/').filter(Boolean)) {
      const child: DirNode | FileNode | undefined = isDir(node) ? node.children.get(part.toUpperCase()) : undefined;
      if (!child) throw new Error(`FAT: no ${path} in the volume`);
      node = child;
    }
    if (isDir(node)) throw new Error(`FAT: ${path} is a directory`);
    return node;
  };
  for (const file of options.files) {
    const node = findFile(file.path);
    const {first, count} = allocate(file.content.size, false);
    node.cluster = first;
    node.clusters = count;
    fileNodes.set(file.path, node);
  }
  const used = next - 2;
  if (used > g.clusters) {
    throw new TskitError(`FAT: the files need ${used * clusterBytes} bytes, the ${options.size}-byte volume holds ${g.clusters * clusterBytes}`);
  }
  const clusterOffset = (cluster: number) => (g.dataStart + (cluster - 2) * g.sectorsPerCluster) * SECTOR;

  const regions: Region[] = [];

  // Directories.
  for (const dir of dirs) {
    const size = !dir.parent && g.type === 16 ? g.rootDirSectors * SECTOR : dir.clusters * clusterBytes;
    const out = Buffer.alloc(size);
    let at = 0;
    if (dir.parent) {
      const dot = Buffer.from('.          ', 'latin1');
      const dotdot = Buffer.from('..         ', 'latin1');
      shortEntry(out, at, dot, ATTR_DIRECTORY, 0, dir.cluster, 0, stamp);
      at += 32;
      // '..' names cluster 0 when the parent is the root, whatever the root's cluster
      shortEntry(out, at, dotdot, ATTR_DIRECTORY, 0, dir.parent.parent ? dir.parent.cluster : 0, 0, stamp);
      at += 32;
    } else {
      const label = Buffer.alloc(11, 0x20);
      label.write(options.label.toUpperCase().slice(0, 11), 0, 'latin1');
      shortEntry(out, at, label, ATTR_VOLUME_ID, 0, 0, 0, stamp);
      at += 32;
    }
    for (const plan of planEntries(dir)) {
      if (plan.lfn) at += lfnEntries(out, at, plan.lfn, lfnChecksum(plan.short));
      const size = isDir(plan.node) ? 0 : plan.node.file.content.size;
      shortEntry(out, at, plan.short, plan.attributes, plan.caseFlags, plan.node.cluster, size, stamp);
      at += 32;
    }
    if (at > out.length) throw new Error(`FAT: directory ${dir.path || '/'} overflows its ${out.length} bytes`);
    const offset = !dir.parent && g.type === 16 ? (g.reservedSectors + 2 * g.fatSectors) * SECTOR : clusterOffset(dir.cluster);
    regions.push({offset, content: bufferContent(out)});
  }

  // Files.
  for (const [path, node] of fileNodes) {
    if (node.clusters > 0) regions.push({offset: clusterOffset(node.cluster), content: node.file.content});
    void path;
  }

  // The FATs: every allocation is one chain of consecutive clusters.
  const chains: Array<{first: number; count: number}> = [];
  for (const dir of dirs) if (dir.clusters > 0) chains.push({first: dir.cluster, count: dir.clusters});
  for (const node of fileNodes.values()) if (node.clusters > 0) chains.push({first: node.cluster, count: node.clusters});
  const entryBytes = g.type === 32 ? 4 : 2;
  const eoc = g.type === 32 ? 0x0fffffff : 0xffff;
  const usedBytes = Math.ceil(((next) * entryBytes) / SECTOR) * SECTOR; // entries 0..next-1, to whole sectors
  const fatContent = (): Content =>
    generatedContent(usedBytes, function* () {
      // chains are consecutive and ascending from cluster 2: entry n points at n+1 except at a chain's end
      const ends = new Set(chains.map((c) => c.first + c.count - 1));
      const step = 64 * 1024;
      for (let base = 0; base < usedBytes / entryBytes; base += step) {
        const count = Math.min(step, usedBytes / entryBytes - base);
        const out = Buffer.alloc(count * entryBytes);
        for (let i = 0; i < count; i++) {
          const n = base + i;
          let value: number;
          if (n === 0) value = g.type === 32 ? 0x0ffffff8 : 0xfff8;
          else if (n === 1) value = eoc;
          else if (n >= next) value = 0;
          else value = ends.has(n) ? eoc : n + 1;
          if (entryBytes === 4) out.writeUInt32LE(value, i * 4);
          else out.writeUInt16LE(value, i * 2);
        }
        yield out;
      }
    });
  for (let copy = 0; copy < 2; copy++) regions.push({offset: (g.reservedSectors + copy * g.fatSectors) * SECTOR, content: fatContent()});

  // Boot sector, FSInfo and (FAT32) their backups.
  const volume: FatVolume = {
    geometry: g,
    regions,
    fileSectors(path: string) {
      const node = fileNodes.get(path);
      if (!node) throw new Error(`FAT: no ${path} in the volume`);
      return {first: node.clusters > 0 ? clusterOffset(node.cluster) / SECTOR : 0, count: Math.ceil(node.file.content.size / SECTOR)};
    },
  };
  const boot = bootSector(g, options);
  options.bootSector?.(boot, volume);
  if (g.type === 32) {
    const info = Buffer.alloc(SECTOR);
    info.writeUInt32LE(0x41615252, 0);
    info.writeUInt32LE(0x61417272, 484);
    info.writeUInt32LE(g.clusters - used, 488);
    info.writeUInt32LE(next, 492);
    info.writeUInt32LE(0xaa550000, 508);
    const head = Buffer.concat([boot, info]);
    regions.push({offset: 0, content: bufferContent(head)});
    regions.push({offset: 6 * SECTOR, content: bufferContent(Buffer.from(head))});
  } else {
    regions.push({offset: 0, content: bufferContent(boot)});
  }
  return volume;
}

function bootSector(g: FatGeometry, options: FatOptions): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.set(g.type === 32 ? [0xeb, 0x58, 0x90] : [0xeb, 0x3c, 0x90], 0);
  b.write('TSKIT   ', 3, 'latin1');
  b.writeUInt16LE(SECTOR, 11);
  b[13] = g.sectorsPerCluster;
  b.writeUInt16LE(g.reservedSectors, 14);
  b[16] = 2;
  b.writeUInt16LE(g.type === 32 ? 0 : FAT16_ROOT_ENTRIES, 17);
  b.writeUInt16LE(g.type === 16 && g.totalSectors < 0x10000 ? g.totalSectors : 0, 19);
  b[21] = 0xf8;
  b.writeUInt16LE(g.type === 16 ? g.fatSectors : 0, 22);
  b.writeUInt16LE(63, 24); // sectors per track, heads: the usual LBA-translation geometry
  b.writeUInt16LE(255, 26);
  b.writeUInt32LE(options.hiddenSectors ?? 0, 28);
  b.writeUInt32LE(g.type === 16 && g.totalSectors < 0x10000 ? 0 : g.totalSectors, 32);
  let ext = 36;
  if (g.type === 32) {
    b.writeUInt32LE(g.fatSectors, 36);
    b.writeUInt16LE(0, 40); // both FATs mirrored
    b.writeUInt16LE(0, 42); // version 0.0
    b.writeUInt32LE(2, 44); // root directory cluster
    b.writeUInt16LE(1, 48); // FSInfo sector
    b.writeUInt16LE(6, 50); // backup boot sector
    ext = 64;
  }
  b[ext] = 0x80; // drive number
  b[ext + 2] = 0x29; // extended boot signature: the next three fields are valid
  b.writeUInt32LE(options.volumeId >>> 0, ext + 3);
  const label = Buffer.alloc(11, 0x20);
  label.write(options.label.toUpperCase().slice(0, 11), 0, 'latin1');
  label.copy(b, ext + 7);
  b.write(g.type === 32 ? 'FAT32   ' : 'FAT16   ', ext + 18, 'latin1');
  // Not a boot loader: "int 18h" asks the BIOS for the next boot device.
  const code = ext + 26;
  b.set([0xcd, 0x18], code);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}
