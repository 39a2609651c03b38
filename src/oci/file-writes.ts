// Writing blob files so that what is on disk is exactly what was hashed: every write goes to
// an explicit position (a restart from byte 0 really overwrites from byte 0), a short write
// is continued until the buffer is written or the kernel reports why not, and a full disk
// becomes one error that names the file and the space it still needs.
import {statfs, writeFile} from 'node:fs/promises';
import type {FileHandle} from 'node:fs/promises';
import {dirname} from 'node:path';
import {TskitError} from '../errors.ts';

const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export function isNoSpace(error: unknown): boolean {
  return NO_SPACE.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** Writes all of `data` at `position` (a file position, never the handle's own). */
export async function writeFullyAt(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const {bytesWritten} = await handle.write(data, done, data.length - done, position + done);
    // write(2) returns 0 only for a zero-length request; treat it as the disk refusing more
    if (bytesWritten <= 0) throw Object.assign(new Error('short write'), {code: 'ENOSPC'});
    done += bytesWritten;
  }
}

/** Bytes free to an unprivileged writer on the filesystem holding `path` (undefined when unknown). */
export async function freeBytes(path: string): Promise<number | undefined> {
  for (const candidate of [path, dirname(path)]) {
    try {
      const s = await statfs(candidate);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      // try the directory
    }
  }
  return undefined;
}

/** Sizes in errors: exact below 1 MiB, else MiB with one decimal. */
function size(bytes: number): string {
  return bytes < 2 ** 20 ? `${bytes} bytes` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * A full disk (or quota) while writing `total` bytes of `what` to `path`, `written` of them
 * already there: names the file, what it needs, and what is free.
 */
export async function noSpaceError(path: string, what: string, total: number, written: number, cause: unknown): Promise<TskitError> {
  const free = await freeBytes(path);
  const freeText = free === undefined ? '' : `, ${size(free)} free there`;
  const code = (cause as NodeJS.ErrnoException).code ?? 'ENOSPC';
  return new TskitError(
    `no space left writing ${what} to ${path} (${code}): it needs ${size(total)}, ${size(written)} of it written${freeText}; free ${size(Math.max(0, total - written))} or more and try again`,
    {cause},
  );
}

/** writeFile, with a full disk reported as noSpaceError names it (`what` the file is). */
export async function writeFileReporting(path: string, data: string | Buffer, what: string): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (error) {
    if (isNoSpace(error)) throw await noSpaceError(path, what, Buffer.byteLength(data), 0, error);
    throw error;
  }
}
