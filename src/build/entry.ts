// The entry stream is the seam between assembly and every output format: the tar
// writer, the cpio (initrd) writer and the filesystem writers all consume the same
// ordered stream, so each format sees identical content and memory stays bounded.

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface Entry {
  /** Path inside the image: relative, '/'-separated, normalised, no leading '/' or './', no trailing '/'. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (at most 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
  /** Content length in bytes; 0 for everything but 'file'. */
  size: number;
  /** A symlink's target as written, or (hard link) the image path of the entry it shares content with. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, e.g. security.capability. */
  xattrs?: Record<string, Buffer>;
  /**
   * How many paths share this file's content (itself plus hard links to it), when more than
   * one: the cpio writer must mark the first copy before it sees the links.
   */
  nlink?: number;
  /** Extra PAX records carried into tar output (LinuxKit's LINUXKIT.source and LINUXKIT.location). */
  pax?: Record<string, string>;
  /**
   * A 'file' entry's bytes, exactly `size` of them. A consumer must read it to the end (or
   * drain it) before it pulls the next entry: it is usually a window onto a layer stream.
   */
  content?: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export type EntryStream = AsyncIterable<Entry> | Iterable<Entry>;

/** LinuxKit's fixed timestamp for entries it generates (2017-04-18T16:30:00Z). */
export const LINUXKIT_EPOCH = Date.UTC(2017, 3, 18, 16, 30, 0) / 1000;

/** Timestamp for generated entries: SOURCE_DATE_EPOCH when set, LinuxKit's epoch otherwise. */
export function generatedMtime(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return LINUXKIT_EPOCH;
  if (!/^\d+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Reads an entry's remaining content and throws it away (for consumers that skip entries). */
export async function drain(entry: Entry): Promise<void> {
  if (!entry.content) return;
  for await (const _chunk of entry.content) {
    // discard
  }
}
