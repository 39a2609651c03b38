// Parses sizes for --mem and --disk size=: plain numbers are MiB (as in LinuxKit and qemu -m),
// suffixes K/M/G/T (with or without "iB"/"B") are binary multiples.
import {TskitError} from '../errors.ts';

const shift: Record<string, number> = {'': 20, k: 10, m: 20, g: 30, t: 40};

/** Bytes in `text` ("512", "512M", "1G", "1.5GiB", "2048k"); TskitError naming `what` otherwise. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new TskitError(`${what}: "${text}" is not a size (use e.g. 512, 512M, 1G; plain numbers are MiB)`, {exitCode: 2});
  const bytes = Number(m[1]) * 2 ** shift[m[2]!.toLowerCase()]!;
  if (!Number.isFinite(bytes) || bytes <= 0) throw new TskitError(`${what}: "${text}" must be more than zero`, {exitCode: 2});
  return Math.round(bytes);
}

/** Whole MiB in `text`, rounding up (qemu -m takes MiB). */
export function parseSizeMiB(text: string, what = 'size'): number {
  return Math.ceil(parseSize(text, what) / 2 ** 20);
}
