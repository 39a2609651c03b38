// Builds in-memory entry streams for unit tests of the build pipeline.
import type {Entry} from '../../src/build/entry.ts';

const base = {mode: 0o644, uid: 0, gid: 0, mtime: 1000, size: 0};

export function file(path: string, content: string | Buffer, extra: Partial<Entry> = {}): Entry {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  return {...base, path, type: 'file', size: bytes.length, content: once(bytes), ...extra};
}

export function dir(path: string, extra: Partial<Entry> = {}): Entry {
  return {...base, mode: 0o755, path, type: 'dir', ...extra};
}

export function symlink(path: string, target: string, extra: Partial<Entry> = {}): Entry {
  return {...base, mode: 0o777, path, type: 'symlink', linkname: target, ...extra};
}

export function hardlink(path: string, target: string, extra: Partial<Entry> = {}): Entry {
  return {...base, path, type: 'hardlink', linkname: target, ...extra};
}

export function whiteout(path: string): Entry {
  return {...base, path, type: 'file'};
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A layer that can be opened any number of times, giving fresh content iterables each time. */
export function layer(what: string, make: () => Entry[]) {
  return {
    what,
    async *open() {
      yield* make();
    },
  };
}

export interface Collected {
  path: string;
  type: Entry['type'];
  mode: number;
  linkname?: string;
  nlink?: number;
  content?: string;
}

export async function collect(entries: AsyncIterable<Entry>): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const entry of entries) {
    const item: Collected = {path: entry.path, type: entry.type, mode: entry.mode};
    if (entry.linkname !== undefined) item.linkname = entry.linkname;
    if (entry.nlink !== undefined) item.nlink = entry.nlink;
    if (entry.type === 'file') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.content ?? []) chunks.push(Buffer.from(chunk));
      item.content = Buffer.concat(chunks).toString();
    }
    out.push(item);
  }
  return out;
}
