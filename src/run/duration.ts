// Parses the durations users type for --timeout: `90s`, `5m`, `1h30m`, `1.5s`, `250ms`, or a
// plain number of seconds. Go-style unit chains, because that is what LinuxKit users know.
import {TskitError} from '../errors.ts';

const unitMs: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000};

/** Milliseconds in `text`; throws TskitError naming `what` (e.g. "--timeout") when it is not a duration. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matchedTo = 0;
  for (let m = part.exec(trimmed); m; m = part.exec(trimmed)) {
    total += Number(m[1]) * unitMs[m[2]!]!;
    matchedTo = part.lastIndex;
  }
  if (trimmed === '' || matchedTo !== trimmed.length) {
    throw new TskitError(`${what}: "${text}" is not a duration (use e.g. 90s, 5m, 1h30m, 500ms or plain seconds)`, {exitCode: 2});
  }
  return Math.round(total);
}

/** Renders milliseconds back the way users write them: 90000 -> "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let seconds = Math.round(ms / 100) / 10;
  const h = Math.floor(seconds / 3600);
  seconds -= h * 3600;
  const m = Math.floor(seconds / 60);
  seconds = Math.round((seconds - m * 60) * 10) / 10;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${seconds || (!h && !m) ? `${seconds}s` : ''}`;
}
