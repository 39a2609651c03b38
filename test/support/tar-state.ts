// What a tar leaves on disk when extracted, per path (later entries win, as tar extraction
// does): for comparing two tools' outputs entry by entry. Test material.
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import type {Entry} from '../../src/build/entry.ts';
import {normalizeImagePath} from '../../src/build/image-path.ts';
import {readTar} from '../../src/build/tar/reader.ts';

export interface PathState {
  type: Entry['type'];
  mode: string;
  uid: number;
  gid: number;
  linkname?: string;
  /** sha256 of a file's content. */
  sha256?: string;
  size?: number;
  dev?: string;
}

export async function tarState(path: string, keepContent: (path: string) => boolean = () => false): Promise<{state: Map<string, PathState>; content: Map<string, Buffer>}> {
  const state = new Map<string, PathState>();
  const content = new Map<string, Buffer>();
  for await (const entry of readTar(createReadStream(path), path)) {
    const name = normalizeImagePath(entry.path, path);
    const item: PathState = {type: entry.type, mode: entry.mode.toString(8), uid: entry.uid, gid: entry.gid};
    if (entry.linkname !== undefined) item.linkname = entry.type === 'hardlink' ? normalizeImagePath(entry.linkname, path) : entry.linkname;
    if (entry.type === 'char' || entry.type === 'block') item.dev = `${entry.devmajor},${entry.devminor}`;
    if (entry.type === 'file') {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      const keep = keepContent(name);
      for await (const chunk of entry.content ?? []) {
        hash.update(chunk);
        if (keep) chunks.push(Buffer.from(chunk));
      }
      item.sha256 = hash.digest('hex');
      item.size = entry.size;
      if (keep) content.set(name, Buffer.concat(chunks));
    }
    state.set(name, item);
  }
  return {state, content};
}
