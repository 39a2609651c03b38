// Final pass over the assembled stream: every directory exactly once and before anything
// inside it, and nothing written through a symlink that an earlier part of the image (an
// init image, say) put where a container bundle or file is going.
import {TskitError} from '../errors.ts';
import type {Entry} from './entry.ts';
import {ancestorsOf} from './image-path.ts';

export async function* withParents(entries: AsyncIterable<Entry>, mtime: number): AsyncGenerator<Entry> {
  const dirs = new Set<string>();
  const symlinks = new Set<string>();
  for await (const entry of entries) {
    for (const ancestor of ancestorsOf(entry.path)) {
      if (dirs.has(ancestor)) continue;
      if (symlinks.has(ancestor)) {
        throw new TskitError(`${entry.path} would be written through the symlink /${ancestor} (${describe(entry)}): tskit refuses to follow it`);
      }
      dirs.add(ancestor);
      yield {path: ancestor, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0};
    }
    if (entry.type === 'dir') {
      // LinuxKit writes a directory again each time a part of the image names it; the
      // first wins here, so /etc keeps the init image's mode even when `files:` adds to it.
      if (dirs.has(entry.path)) continue;
      dirs.add(entry.path);
      symlinks.delete(entry.path);
    } else if (entry.type === 'symlink') {
      symlinks.add(entry.path);
      dirs.delete(entry.path);
    } else {
      symlinks.delete(entry.path);
      dirs.delete(entry.path);
    }
    yield entry;
  }
}

function describe(entry: Entry): string {
  const location = entry.pax?.['LINUXKIT.location'];
  return location ? `from ${location}` : 'from the configuration';
}
