// How the cache commands show what happens: human lines on stderr (a progress line on a
// terminal), or every event and the final result as JSON lines on stdout with --json.
import type {Emit, TskitEvent} from '../events.ts';
import {EVENT_SCHEMA_VERSION, eventToJsonLine} from './json-lines.ts';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}

export interface ProgressRenderer {
  emit: Emit;
  /** Prints the command's result: JSON line in --json mode, else the human text given. */
  result(value: unknown, human: () => string): void;
  done(): void;
}

export function createProgressRenderer(json: boolean, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  const tty = Boolean(err.isTTY) && !json;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) {
      err.write('\r\x1b[K');
      progressShown = false;
    }
  };
  const emit: Emit = (event: TskitEvent) => {
    if (json) {
      out.write(eventToJsonLine(event));
      return;
    }
    switch (event.type) {
      case 'log':
        if (event.level === 'debug' && !process.env.TSKIT_DEBUG) return;
        clearProgress();
        err.write(`${event.level === 'warn' ? 'warning: ' : ''}${event.message}\n`);
        return;
      case 'progress':
        if (!tty) return;
        err.write(`\r\x1b[K${event.task}: ${formatBytes(event.done)}${event.total !== undefined ? ` / ${formatBytes(event.total)}` : ''}`);
        progressShown = true;
        return;
      case 'image.resolved':
        clearProgress();
        err.write(`${event.ref} (${event.platform}): ${event.digest}${event.fromCache ? ' (cached)' : ''}\n`);
        return;
      default:
        return;
    }
  };
  return {
    emit,
    result(value, human) {
      clearProgress();
      if (json) out.write(`${JSON.stringify({v: EVENT_SCHEMA_VERSION, type: 'result', ...(value as object)})}\n`);
      else {
        const text = human();
        if (text) out.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    },
    done: clearProgress,
  };
}
