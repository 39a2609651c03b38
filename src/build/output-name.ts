// The name outputs get when --name is not given, as LinuxKit's build chooses it: the last
// configuration's file name without its extension, "moby" when that is standard input.
import {basename, extname} from 'node:path';

export const STDIN_OUTPUT_NAME = 'moby';

export function defaultOutputName(sources: string[]): string {
  const last = sources[sources.length - 1] ?? '-';
  if (last === '-') return STDIN_OUTPUT_NAME;
  const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(last) ? new URL(last).pathname : last;
  const name = basename(path, extname(path));
  return name === '' ? STDIN_OUTPUT_NAME : name;
}
