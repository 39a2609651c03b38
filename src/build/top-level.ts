// Final pass over the assembled stream: every directory exactly once and before anything
// inside it, and nothing written through a symlink that an earlier part of the image (an
// init image, say) put where a container bundle or file is going: no entry of the output
// ever sits under, or is a directory over, a symlink entry, so no extractor can be led
// outside its root.
import {printable, TskitError} from '../errors.ts';
import type {Entry} from './entry.ts';
import {PathTree} from './path-tree.ts';

export async function* withParents(entries: AsyncIterable<Entry>, mtime: number): AsyncGenerator<Entry> {
  const tree = new PathTree();
  for await (const entry of entries) {
    const {created, symlink} = tree.ensureParents(entry.path);
    for (const dir of created) yield {path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0};
    if (symlink) throw throughSymlink(entry, symlink.path, symlink.target);
    if (entry.type === 'dir') {
      // LinuxKit writes a directory again each time a part of the image names it; the
      // first wins here, so /etc keeps the init image's mode even when `files:` adds to it.
      const was = tree.get(entry.path);
      if (was?.kind === 'dir') continue;
      if (was?.kind === 'symlink') throw throughSymlink(entry, entry.path, was.target ?? '');
      tree.set(entry.path, 'dir');
    } else {
      tree.set(entry.path, entry.type === 'symlink' ? 'symlink' : 'other', entry.linkname);
    }
    yield entry;
  }
}

function throughSymlink(entry: Entry, rawLink: string, rawTarget: string): TskitError {
  const [path, link, target] = [printable(entry.path), printable(rawLink), printable(rawTarget)];
  const location = entry.pax?.['LINUXKIT.location'];
  const from = location ? `from ${location}` : 'from the configuration';
  const points = target ? ` (-> ${target})` : '';
  return new TskitError(
    entry.path === rawLink
      ? `a directory /${path} (${from}) would replace the symlink /${link}${points} an image put there, and what goes in it would land where the symlink points: tskit refuses to write through symlinks; use the path the symlink points at`
      : `${path} would be written through the symlink /${link}${points} (${from}): tskit refuses to follow it; use the path the symlink points at`,
  );
}
