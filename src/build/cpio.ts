// Writes the entry stream as a "newc" cpio archive, the format the kernel unpacks as an
// initramfs. Hard links are kept as real links: the kernel links every later member with
// the same inode number to the first one, so the first carries the data and the others
// are empty (LinuxKit turns hard links into symlinks instead).
import type {Entry, EntryStream} from './entry.ts';

const TYPE_BITS: Record<Entry['type'], number> = {
  fifo: 0o010000,
  char: 0o020000,
  dir: 0o040000,
  block: 0o060000,
  file: 0o100000,
  symlink: 0o120000,
  hardlink: 0o100000,
};

interface Inode {
  ino: number;
  mode: number;
}

export async function* writeCpio(entries: EntryStream): AsyncGenerator<Buffer> {
  let nextIno = 1;
  let offset = 0;
  const linkTargets = new Map<string, Inode>();

  const emit = function* (buffer: Buffer): Generator<Buffer> {
    offset += buffer.length;
    yield buffer;
  };
  const padding = (): Buffer => Buffer.alloc((4 - (offset % 4)) % 4);

  for await (const entry of entries) {
    let ino: number;
    let mode = TYPE_BITS[entry.type] | (entry.mode & 0o7777);
    let nlink = entry.type === 'dir' ? 2 : 1;
    let size = 0;
    let data: Buffer | undefined;

    if (entry.type === 'hardlink') {
      const target = linkTargets.get(entry.linkname ?? '');
      if (!target) throw new Error(`cpio writer: hard link ${entry.path} points at ${entry.linkname}, which was not written before it`);
      ino = target.ino;
      mode = target.mode;
      nlink = 2;
    } else {
      ino = nextIno++;
      if (entry.type === 'file') {
        size = entry.size;
        if ((entry.nlink ?? 1) > 1) {
          nlink = entry.nlink!;
          linkTargets.set(entry.path, {ino, mode});
        }
      } else if (entry.type === 'symlink') {
        data = Buffer.from(entry.linkname ?? '');
        size = data.length;
      }
    }

    const isDevice = entry.type === 'char' || entry.type === 'block';
    const name = Buffer.from(`${entry.path}\0`);
    const header = Buffer.from(
      '070701' +
        [
          ino,
          mode,
          entry.uid,
          entry.gid,
          nlink,
          Math.max(0, entry.mtime),
          size,
          0,
          0,
          isDevice ? (entry.devmajor ?? 0) : 0,
          isDevice ? (entry.devminor ?? 0) : 0,
          name.length,
          0,
        ]
          .map(hex8)
          .join(''),
      'latin1',
    );
    yield* emit(header);
    yield* emit(name);
    yield* emit(padding());

    if (data) {
      yield* emit(data);
    } else if (entry.type === 'file' && size > 0) {
      let written = 0;
      for await (const chunk of entry.content ?? []) {
        written += chunk.length;
        yield* emit(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      }
      if (written !== size) throw new Error(`cpio writer: ${entry.path} declared ${size} bytes but gave ${written}`);
    }
    yield* emit(padding());
  }

  const trailer = Buffer.from('TRAILER!!!\0');
  yield* emit(Buffer.from('070701' + [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, trailer.length, 0].map(hex8).join(''), 'latin1'));
  yield* emit(trailer);
  yield* emit(padding());
}

function hex8(value: number): string {
  if (value > 0xffffffff) throw new Error(`cpio writer: value ${value} does not fit a newc header field`);
  return value.toString(16).padStart(8, '0').toUpperCase();
}
