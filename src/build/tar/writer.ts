// Writes the entry stream as a POSIX tar (ustar, with PAX records where ustar cannot hold
// a value: long or non-ASCII names, big ids or sizes, xattrs, LinuxKit's source records).
// Output depends only on the entries, so equal inputs give byte-identical archives.
import type {Entry, EntryStream} from '../entry.ts';

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

const TYPEFLAG: Record<Entry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export async function* writeTar(entries: EntryStream): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    yield* headerBlocks(entry);
    if (entry.type === 'file' && entry.size > 0) {
      let written = 0;
      for await (const chunk of entry.content ?? []) {
        written += chunk.length;
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      }
      if (written !== entry.size) throw new Error(`tar writer: ${entry.path} declared ${entry.size} bytes but gave ${written}`);
      const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      if (pad) yield ZERO_BLOCK.subarray(0, pad);
    }
  }
  yield ZERO_BLOCK;
  yield ZERO_BLOCK;
}

function* headerBlocks(entry: Entry): Generator<Buffer> {
  const records: Array<[string, Buffer]> = [];
  const split = splitUstarName(entry.path);
  if (!split) records.push(['path', Buffer.from(entry.path)]);
  const linkname = entry.linkname ?? '';
  if (!fitsAscii(linkname, 100)) records.push(['linkpath', Buffer.from(linkname)]);
  if (entry.uid > MAX_OCTAL_7) records.push(['uid', Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) records.push(['gid', Buffer.from(String(entry.gid))]);
  if (entry.size > MAX_OCTAL_11) records.push(['size', Buffer.from(String(entry.size))]);
  if (entry.mtime < 0 || entry.mtime > MAX_OCTAL_11) records.push(['mtime', Buffer.from(String(entry.mtime))]);
  for (const key of Object.keys(entry.xattrs ?? {}).sort()) records.push([`SCHILY.xattr.${key}`, entry.xattrs![key]!]);
  for (const key of Object.keys(entry.pax ?? {}).sort()) records.push([key, Buffer.from(entry.pax![key]!)]);

  if (records.length > 0) {
    const body = encodePax(records);
    const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
    yield ustarHeader({
      name: asciiPrefix(`PaxHeaders/${base}`, 100),
      prefix: '',
      typeflag: 'x',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: body.length,
      mtime: clampMtime(entry.mtime),
      linkname: '',
      devmajor: 0,
      devminor: 0,
    });
    yield body;
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad) yield ZERO_BLOCK.subarray(0, pad);
  }

  yield ustarHeader({
    name: split ? split.name : asciiPrefix(entry.path, 100),
    prefix: split ? split.prefix : '',
    typeflag: TYPEFLAG[entry.type],
    mode: entry.mode & 0o7777,
    uid: Math.min(entry.uid, MAX_OCTAL_7),
    gid: Math.min(entry.gid, MAX_OCTAL_7),
    size: entry.type === 'file' ? Math.min(entry.size, MAX_OCTAL_11) : 0,
    mtime: clampMtime(entry.mtime),
    linkname: fitsAscii(linkname, 100) ? linkname : asciiPrefix(linkname, 100),
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
  });
}

interface UstarFields {
  name: string;
  prefix: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function ustarHeader(f: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(f.name, 0, 100, 'latin1');
  octal(block, 100, 8, f.mode);
  octal(block, 108, 8, f.uid);
  octal(block, 116, 8, f.gid);
  octal(block, 124, 12, f.size);
  octal(block, 136, 12, f.mtime);
  block.fill(0x20, 148, 156);
  block.write(f.typeflag, 156, 1, 'latin1');
  block.write(f.linkname, 157, 100, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  octal(block, 329, 8, f.devmajor);
  octal(block, 337, 8, f.devminor);
  block.write(f.prefix, 345, 155, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return block;
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'latin1');
}

function fitsAscii(text: string, max: number): boolean {
  return text.length <= max && /^[\x20-\x7e]*$/.test(text);
}

function asciiPrefix(text: string, max: number): string {
  return text.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

function clampMtime(mtime: number): number {
  return Math.max(0, Math.min(mtime, MAX_OCTAL_11));
}

/** ustar holds a path as prefix (155) + '/' + name (100); null when the path does not fit. */
function splitUstarName(path: string): {name: string; prefix: string} | null {
  if (!/^[\x20-\x7e]*$/.test(path)) return null;
  if (path.length <= 100) return {name: path, prefix: ''};
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length > 155) return null;
    if (name.length <= 100 && name.length > 0) return {name, prefix};
  }
  return null;
}

/** PAX records: "LEN key=value\n", LEN counting its own digits. */
function encodePax(records: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const rest = Buffer.byteLength(key) + value.length + 3; // ' ' '=' '\n'
    let length = rest + String(rest).length;
    if (String(length).length !== String(rest).length) length = rest + String(length).length;
    parts.push(Buffer.from(`${length} ${key}=`), value, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}
