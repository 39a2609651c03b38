// An ISO 9660 (ECMA-119) image with El Torito boot entries: system area (sectors 0-15,
// where a hybrid MBR goes), primary volume descriptor, El Torito boot record, terminator,
// both path tables, directories, the boot catalog, then every file at a 2048-byte boundary.
// Names are ISO 9660 level 1 (8.3 upper-case d-characters, ";1" version). File content
// streams when the extents are produced; dates come from the build's timestamp.
import {TskitError} from '../errors.ts';
import {bufferContent, shiftRegions, type Content, type Region} from './content.ts';

export const ISO_BLOCK = 2048;
const SYSTEM_AREA_BLOCKS = 16;

export interface IsoFile {
  /** '/'-separated, e.g. ISOLINUX/ISOLINUX.BIN. */
  path: string;
  size: number;
  /**
   * The bytes, given the file's LBA (boot files record where they are): content, or regions
   * at offsets inside the file (a filesystem image; what they leave out is zeros).
   */
  content(lba: number): Content | Region[];
}

export interface BootEntry {
  /** 0: x86 BIOS, 0xEF: UEFI. */
  platform: 0 | 0xef;
  /** The boot image: one of the files. */
  path: string;
  /** Virtual 512-byte sectors the firmware loads (BIOS), or the image's size in them (UEFI; 0 = the rest of the medium). */
  loadSectors: number;
}

export interface IsoOptions {
  files: IsoFile[];
  volumeId: string;
  /** Seconds since the epoch for every date. */
  mtime: number;
  boot?: {catalogPath: string; entries: BootEntry[]};
  /** Pads the image to a multiple of this many bytes (isohybrid: 1 MiB, whole cylinders). */
  padTo?: number;
  /** The first 512 bytes of the system area (a hybrid MBR), from the final layout. */
  systemArea?(layout: IsoLayout): Buffer;
}

export interface IsoLayout {
  size: number;
  fileLba(path: string): number;
  regions: Region[];
}

interface Dir {
  name: string;
  parent: Dir | undefined;
  dirs: Map<string, Dir>;
  files: Map<string, {name: string; file: IsoFile; lba: number}>;
  number: number;
  lba: number;
  size: number;
}

const D_CHARS = /^[A-Z0-9_]+$/;

function checkName(name: string, path: string, isDir: boolean): void {
  const dot = name.indexOf('.');
  const base = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot + 1);
  const ok = isDir ? D_CHARS.test(name) && name.length <= 8 : D_CHARS.test(base) && base.length <= 8 && (ext === '' || (D_CHARS.test(ext) && ext.length <= 3));
  if (!ok) throw new TskitError(`ISO 9660: ${path}: "${name}" is not a level 1 name (8.3, A-Z 0-9 _)`);
}

/** ISO 9660's 7-byte directory record date (UTC). */
function recordDate(seconds: number): Buffer {
  const d = new Date(seconds * 1000);
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}

/** The 17-byte volume descriptor date (UTC). */
function volumeDate(seconds: number): Buffer {
  const d = new Date(seconds * 1000);
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  const text = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}${p(d.getUTCHours(), 2)}${p(d.getUTCMinutes(), 2)}${p(d.getUTCSeconds(), 2)}00`;
  return Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from([0])]);
}

function both32(out: Buffer, at: number, value: number): void {
  out.writeUInt32LE(value, at);
  out.writeUInt32BE(value, at + 4);
}

function both16(out: Buffer, at: number, value: number): void {
  out.writeUInt16LE(value, at);
  out.writeUInt16BE(value, at + 2);
}

function dirRecord(identifier: Buffer, lba: number, size: number, isDir: boolean, date: Buffer): Buffer {
  const length = 33 + identifier.length + (identifier.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(length);
  r[0] = length;
  both32(r, 2, lba);
  both32(r, 10, size);
  date.copy(r, 18);
  r[25] = isDir ? 0x02 : 0;
  both16(r, 28, 1);
  r[32] = identifier.length;
  identifier.copy(r, 33);
  return r;
}

const blocks = (bytes: number) => Math.ceil(bytes / ISO_BLOCK);

export function isoLayout(options: IsoOptions): IsoLayout {
  const root: Dir = {name: '', parent: undefined, dirs: new Map(), files: new Map(), number: 1, lba: 0, size: 0};
  const catalogFile: IsoFile | undefined = options.boot ? {path: options.boot.catalogPath, size: ISO_BLOCK, content: () => bufferContent(Buffer.alloc(0))} : undefined;
  const all = catalogFile ? [catalogFile, ...options.files] : options.files;
  for (const file of all) {
    const parts = file.path.split('/').filter(Boolean);
    let dir = root;
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      checkName(part, file.path, !last);
      if (last) {
        if (dir.files.has(part) || dir.dirs.has(part)) throw new TskitError(`ISO 9660: ${file.path} is given twice`);
        dir.files.set(part, {name: part, file, lba: 0});
      } else {
        let next = dir.dirs.get(part);
        if (!next) {
          next = {name: part, parent: dir, dirs: new Map(), files: new Map(), number: 0, lba: 0, size: 0};
          dir.dirs.set(part, next);
        }
        dir = next;
      }
    }
  }
  const sorted = <T>(map: Map<string, T>) => [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  // Breadth-first, children by name: the order path tables need.
  const dirs: Dir[] = [root];
  for (let i = 0; i < dirs.length; i++) for (const child of sorted(dirs[i]!.dirs)) dirs.push(child);
  dirs.forEach((dir, i) => (dir.number = i + 1));
  const date = recordDate(options.mtime);

  const fileIdentifier = (name: string) => Buffer.from(`${name.includes('.') ? name : `${name}.`};1`, 'latin1');
  const recordsOf = (dir: Dir): Array<{identifier: Buffer; target: Dir | {lba: number; file: IsoFile}; isDir: boolean}> => {
    const children: Array<{identifier: Buffer; target: Dir | {lba: number; file: IsoFile}; isDir: boolean; key: string}> = [
      ...sorted(dir.dirs).map((d) => ({identifier: Buffer.from(d.name, 'latin1'), target: d as Dir | {lba: number; file: IsoFile}, isDir: true, key: d.name})),
      ...sorted(dir.files).map((f) => ({identifier: fileIdentifier(f.name), target: f as Dir | {lba: number; file: IsoFile}, isDir: false, key: f.name})),
    ];
    children.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return [
      {identifier: Buffer.from([0]), target: dir, isDir: true},
      {identifier: Buffer.from([1]), target: dir.parent ?? dir, isDir: true},
      ...children,
    ];
  };
  const dirSize = (dir: Dir) => {
    let at = 0;
    for (const r of recordsOf(dir)) {
      const length = 33 + r.identifier.length + (r.identifier.length % 2 === 0 ? 1 : 0);
      if ((at % ISO_BLOCK) + length > ISO_BLOCK) at = blocks(at) * ISO_BLOCK;
      at += length;
    }
    return blocks(at) * ISO_BLOCK;
  };
  const pathTableSize = dirs.reduce((sum, d) => sum + 8 + Math.max(1, d.name.length) + (Math.max(1, d.name.length) % 2), 0);

  // Block allocation.
  let lba = SYSTEM_AREA_BLOCKS;
  const pvdLba = lba++;
  const bootRecordLba = options.boot ? lba++ : 0;
  const terminatorLba = lba++;
  const lPathLba = lba;
  lba += blocks(pathTableSize);
  const mPathLba = lba;
  lba += blocks(pathTableSize);
  for (const dir of dirs) {
    dir.size = dirSize(dir);
    dir.lba = lba;
    lba += dir.size / ISO_BLOCK;
  }
  const placed = new Map<string, {lba: number; file: IsoFile}>();
  for (const dir of dirs) for (const f of dir.files.values()) placed.set(f.file.path, f);
  for (const file of all) {
    const f = placed.get(file.path)!;
    f.lba = file.size > 0 ? lba : 0;
    lba += blocks(file.size);
  }
  let size = lba * ISO_BLOCK;
  if (options.padTo) size = Math.ceil(size / options.padTo) * options.padTo;
  const fileLba = (path: string) => {
    const f = placed.get(path);
    if (!f) throw new Error(`ISO 9660: no ${path} in the image`);
    return f.lba;
  };

  const regions: Region[] = [];
  // Volume descriptors.
  const pvd = Buffer.alloc(ISO_BLOCK);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.write(''.padEnd(32), 8, 'latin1'); // system identifier
  pvd.write(options.volumeId.toUpperCase().replace(/[^A-Z0-9_]/g, '_').slice(0, 32).padEnd(32), 40, 'latin1');
  both32(pvd, 80, size / ISO_BLOCK);
  both16(pvd, 120, 1);
  both16(pvd, 124, 1);
  both16(pvd, 128, ISO_BLOCK);
  both32(pvd, 132, pathTableSize);
  pvd.writeUInt32LE(lPathLba, 140);
  pvd.writeUInt32BE(mPathLba, 148);
  dirRecord(Buffer.from([0]), root.lba, root.size, true, date).copy(pvd, 156);
  pvd.write(''.padEnd(128), 190, 'latin1'); // volume set
  pvd.write(''.padEnd(128), 318, 'latin1'); // publisher
  pvd.write('TSKIT'.padEnd(128), 446, 'latin1'); // data preparer
  pvd.write('TSKIT'.padEnd(128), 574, 'latin1'); // application
  pvd.write(''.padEnd(37 * 3), 702, 'latin1'); // copyright, abstract, bibliographic files
  const vdate = volumeDate(options.mtime);
  vdate.copy(pvd, 813); // creation
  vdate.copy(pvd, 830); // modification
  Buffer.concat([Buffer.from('0'.repeat(16), 'latin1'), Buffer.from([0])]).copy(pvd, 847); // expiration: none
  vdate.copy(pvd, 864); // effective
  pvd[881] = 1;
  const descriptors = [pvd];
  if (options.boot) {
    const br = Buffer.alloc(ISO_BLOCK);
    br[0] = 0;
    br.write('CD001', 1, 'latin1');
    br[6] = 1;
    br.write('EL TORITO SPECIFICATION', 7, 'latin1');
    br.writeUInt32LE(fileLba(options.boot.catalogPath), 0x47);
    descriptors.push(br);
  }
  const term = Buffer.alloc(ISO_BLOCK);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  term[6] = 1;
  descriptors.push(term);
  regions.push({offset: pvdLba * ISO_BLOCK, content: bufferContent(Buffer.concat(descriptors))});
  void bootRecordLba;
  void terminatorLba;

  // Path tables (L: little-endian, M: big-endian).
  for (const [at, le] of [[lPathLba, true], [mPathLba, false]] as const) {
    const table = Buffer.alloc(blocks(pathTableSize) * ISO_BLOCK);
    let p = 0;
    for (const dir of dirs) {
      const name = dir.parent ? Buffer.from(dir.name, 'latin1') : Buffer.from([0]);
      table[p] = name.length;
      if (le) {
        table.writeUInt32LE(dir.lba, p + 2);
        table.writeUInt16LE(dir.parent ? dir.parent.number : 1, p + 6);
      } else {
        table.writeUInt32BE(dir.lba, p + 2);
        table.writeUInt16BE(dir.parent ? dir.parent.number : 1, p + 6);
      }
      name.copy(table, p + 8);
      p += 8 + name.length + (name.length % 2);
    }
    regions.push({offset: at * ISO_BLOCK, content: bufferContent(table)});
  }

  // Directories.
  for (const dir of dirs) {
    const out = Buffer.alloc(dir.size);
    let at = 0;
    for (const r of recordsOf(dir)) {
      const target = r.target;
      const record = 'dirs' in target ? dirRecord(r.identifier, target.lba, target.size, true, date) : dirRecord(r.identifier, target.lba, target.file.size, false, date);
      if ((at % ISO_BLOCK) + record.length > ISO_BLOCK) at = blocks(at) * ISO_BLOCK;
      record.copy(out, at);
      at += record.length;
    }
    regions.push({offset: dir.lba * ISO_BLOCK, content: bufferContent(out)});
  }

  // Boot catalog: a validation entry, the default entry, then a section per further platform.
  if (options.boot) {
    const [first, ...rest] = options.boot.entries;
    if (!first) throw new Error('El Torito: no boot entry');
    const catalog = Buffer.alloc(ISO_BLOCK);
    catalog[0] = 1;
    catalog[1] = first.platform;
    catalog.write('TSKIT', 4, 'latin1');
    catalog[30] = 0x55;
    catalog[31] = 0xaa;
    let sum = 0;
    for (let i = 0; i < 32; i += 2) sum = (sum + catalog.readUInt16LE(i)) & 0xffff;
    catalog.writeUInt16LE((0x10000 - sum) & 0xffff, 28);
    const entry = (at: number, e: BootEntry) => {
      catalog[at] = 0x88; // bootable
      catalog[at + 1] = 0; // no emulation
      catalog.writeUInt16LE(0, at + 2); // load segment: the default 0x7C0
      catalog.writeUInt16LE(Math.min(e.loadSectors, 0xffff), at + 6);
      catalog.writeUInt32LE(fileLba(e.path), at + 8);
    };
    entry(32, first);
    let at = 64;
    rest.forEach((e, i) => {
      catalog[at] = i === rest.length - 1 ? 0x91 : 0x90;
      catalog[at + 1] = e.platform;
      catalog.writeUInt16LE(1, at + 2);
      at += 32;
      entry(at, e);
      at += 32;
    });
    regions.push({offset: fileLba(options.boot.catalogPath) * ISO_BLOCK, content: bufferContent(catalog)});
  }

  // Files.
  for (const file of options.files) {
    if (file.size === 0) continue;
    const at = fileLba(file.path);
    const content = file.content(at);
    if (Array.isArray(content)) {
      regions.push(...shiftRegions(content, at * ISO_BLOCK));
      continue;
    }
    if (content.size !== file.size) throw new Error(`ISO 9660: ${file.path} gave ${content.size} bytes, announced ${file.size}`);
    regions.push({offset: at * ISO_BLOCK, content});
  }

  const layout: IsoLayout = {size, fileLba, regions};
  if (options.systemArea) regions.push({offset: 0, content: bufferContent(options.systemArea(layout))});
  return layout;
}
