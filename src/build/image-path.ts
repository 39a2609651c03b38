// Entry names from image layers are untrusted: normalise them to clean relative paths and
// reject any that would climb out of the image root.
import {TskitError} from '../errors.ts';

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
  return parts.join('/');
}

/** The directory part of a normalised path ('' for top-level names). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Prefixes of a normalised path, shortest first: 'a/b/c' gives 'a', 'a/b'. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
