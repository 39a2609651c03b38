// The `files:` section, written the way LinuxKit's filesystem() writes it: default modes
// 0600 (files) and 0700 (directories), leading directories given the file's owner and a
// mode with search bits added, and exactly one source of content per entry.
import {createReadStream} from 'node:fs';
import {stat} from 'node:fs/promises';
import {homedir} from 'node:os';
import {resolve} from 'node:path';
import {TskitError} from '../errors.ts';
import type {FileConfig} from '../config/types.ts';
import type {Entry} from './entry.ts';
import {normalizeImagePath, parentOf} from './image-path.ts';
import {idNumeric} from '../config/ids.ts';

export interface FilesContext {
  idMap: Map<string, number>;
  mtime: number;
  /** Directory `source:` paths are read relative to (LinuxKit: the current directory). */
  cwd: string;
  /** The merged configuration as LinuxKit's `metadata: json|yaml` writes it. */
  metadata(format: string): string;
  /** Names an entry in errors, e.g. "hello.yml:12:5 files[2]". */
  where(index: number): string;
}

export async function* fileEntries(files: FileConfig[], ctx: FilesContext): AsyncGenerator<Entry> {
  const added = new Set<string>();
  for (let index = 0; index < files.length; index++) {
    const file = files[index]!;
    const where = ctx.where(index);
    if (!file.path) throw new TskitError(`${where}: a file needs a path`);
    const path = normalizeImagePath(file.path, where);
    let mode = file.directory ? 0o700 : 0o600;
    if (file.mode !== undefined && file.mode !== '') {
      if (!/^[0-7]+$/.test(file.mode)) throw new TskitError(`${where}: mode ${JSON.stringify(file.mode)} is not an octal number`);
      mode = parseInt(file.mode, 8);
    }
    // directories leading to the file get search permission wherever the file is readable or writable
    let dirMode = mode;
    if (dirMode & 0o700) dirMode |= 0o100;
    if (dirMode & 0o070) dirMode |= 0o010;
    if (dirMode & 0o007) dirMode |= 0o001;
    const uid = idNumeric(file.uid, ctx.idMap, `${where} uid`);
    const gid = idNumeric(file.gid, ctx.idMap, `${where} gid`);

    let content: {size: number; stream: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>} | undefined;
    const isSpecial = file.directory || (file.symlink !== undefined && file.symlink !== '');
    if (!isSpecial && file.contents === undefined) {
      if (!file.source && !file.metadata) throw new TskitError(`${where}: contents of file (${file.path}) not specified`);
      if (file.source && file.metadata) throw new TskitError(`${where}: specified both source and metadata for file ${file.path}`);
      if (file.source) {
        const source = resolve(ctx.cwd, file.source.startsWith('~/') ? homedir() + file.source.slice(1) : file.source);
        let size: number;
        try {
          const info = await stat(source);
          if (!info.isFile()) throw new TskitError(`${where}: source ${source} is not a regular file`);
          size = info.size;
        } catch (error) {
          if (error instanceof TskitError) throw error;
          if (file.optional) continue;
          throw new TskitError(`${where}: cannot read source ${source}: ${(error as Error).message}`);
        }
        content = {size, stream: () => createReadStream(source)};
      } else {
        const bytes = Buffer.from(ctx.metadata(file.metadata!));
        content = {size: bytes.length, stream: () => [bytes]};
      }
    } else {
      if (file.metadata) throw new TskitError(`${where}: specified both contents and metadata for file ${file.path}`);
      if (file.source) throw new TskitError(`${where}: specified both contents and source for file ${file.path}`);
      if (file.directory && file.contents !== undefined) throw new TskitError(`${where}: a directory cannot have contents`);
      if (file.contents !== undefined) {
        const bytes = Buffer.from(file.contents);
        content = {size: bytes.length, stream: () => [bytes]};
      }
    }

    const pax = {'LINUXKIT.source': 'linuxkit.files', 'LINUXKIT.location': `files[${index}]`};
    for (const dir of missingAncestors(path, added)) {
      added.add(dir);
      yield {path: dir, type: 'dir', mode: dirMode, uid, gid, mtime: ctx.mtime, size: 0, pax};
    }
    added.add(path);
    const base = {path, mode, uid, gid, mtime: ctx.mtime, pax};
    if (file.directory) {
      yield {...base, type: 'dir', size: 0};
    } else if (file.symlink) {
      yield {...base, type: 'symlink', linkname: file.symlink, size: 0};
    } else {
      yield {...base, type: 'file', size: content!.size, content: content!.stream()};
    }
  }
}

/**
 * The ancestors of `path` not in `added`, shortest first. `added` only grows and holds every
 * ancestor of what it holds, so the walk up stops at the first one known: one lookup per
 * new directory, not one per ancestor of every entry.
 */
function missingAncestors(path: string, added: Set<string>): string[] {
  const missing: string[] = [];
  for (let dir = parentOf(path); dir !== '' && !added.has(dir); dir = parentOf(dir)) missing.push(dir);
  return missing.reverse();
}
