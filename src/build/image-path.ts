// Entry names from image layers are untrusted: normalise them to clean relative paths and
// reject any that would climb out of the image root.
import {TskitError} from '../errors.ts';

/** Linux's PATH_MAX: no path in an image can be longer, and LinuxKit's extraction stops there too. */
export const MAX_PATH_BYTES = 4096;

/** Refuses a path (or link target) longer than PATH_MAX, naming where it came from. */
export function checkPathLength(path: string, what: string, kind = 'entry'): void {
  if (path.length * 3 <= MAX_PATH_BYTES) return; // UTF-8 is at most 3 bytes per UTF-16 unit
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_PATH_BYTES) {
    throw new TskitError(`${what}: ${kind} ${JSON.stringify(path.slice(0, 40))}... is ${bytes} bytes long, more than PATH_MAX (${MAX_PATH_BYTES})`);
  }
}

/** Clean relative path; '' for the root itself. Absolute names are taken as relative to the image root. */
export function normalizeImagePath(raw: string, what: string): string {
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new TskitError(`${what}: entry ${JSON.stringify(raw)} climbs out of the image root`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  const path = parts.join('/');
  checkPathLength(path, what);
  return path;
}

/** The directory part of a normalised path ('' for top-level names). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
