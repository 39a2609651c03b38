// A serial console read by polling a cloud API that takes an offset (GCE
// getSerialPortOutput `start`/`next`; Azure boot diagnostics and vSphere datastore files
// through HTTP Range), turned into the live byte stream Provider.console returns: each byte
// once, in order. When the cloud's buffer dropped bytes before they were read (GCE keeps
// the last 1 MiB; a rotated log starts again), the stream says so where it happened, in a
// visible line with the count, and onDropped is told.
//
// EC2's GetConsoleOutput has no offset (a sliding snapshot): providers/aws/console-tail.ts.
import {sleep} from '../run/signals.ts';

export interface ConsoleChunk {
  /** Console bytes, starting at `start` of the console's whole output. */
  data: Uint8Array;
  /** Where `data` starts (default: the offset asked for). Past it: bytes were dropped; before it: the overlap is skipped. */
  start?: number;
  /** The offset to ask for next (default: start + data.length); GCE's `next`. */
  next?: number;
  /** More is waiting now (the answer was capped): read again without waiting. */
  more?: boolean;
  /** The console started over (the log is shorter than what was read: a rotated blob, a new boot): read from `next ?? 0` on. */
  restarted?: boolean;
}

export interface ConsolePollOptions {
  /** One read of the console from `offset` (bytes since the console began). */
  read(offset: number, signal: AbortSignal): Promise<ConsoleChunk>;
  /** Milliseconds between reads that found nothing more waiting. */
  intervalMs: number;
  /** True once the instance stopped: the console is read once more, then the stream ends. */
  stopped(): boolean;
  signal: AbortSignal;
  /** Bytes were lost between `from` and `to` (or the console restarted: `restarted`). */
  onDropped?(info: {from: number; to: number; bytes: number; restarted?: boolean}): void;
  /** Put a visible notice line into the stream where bytes were lost (default true). */
  notice?: boolean;
  /** Failed reads worth another poll (a transient error; the provider's retry layer already ran); others end the stream by throwing. */
  retryable?(error: unknown): boolean;
}

/** The line written into a console stream where `bytes` were lost. */
export function droppedNotice(bytes: number): string {
  return `\r\n[tskit: ${bytes} bytes of console output were lost here: the cloud dropped them from its console buffer before they were read]\r\n`;
}

export const RESTARTED_NOTICE = '\r\n[tskit: the console log started over (it is shorter than what was already read); reading it again from its start]\r\n';

export async function* pollConsole(options: ConsolePollOptions): AsyncGenerator<Uint8Array> {
  const {signal} = options;
  const notice = options.notice ?? true;
  let offset = 0;
  for (;;) {
    if (signal.aborted) return;
    const last = options.stopped();
    let chunk: ConsoleChunk;
    try {
      chunk = await options.read(offset, signal);
    } catch (error) {
      if (signal.aborted) return;
      if (!options.retryable?.(error)) throw error;
      await sleep(options.intervalMs, signal);
      continue;
    }
    if (chunk.restarted) {
      options.onDropped?.({from: offset, to: offset, bytes: 0, restarted: true});
      if (notice) yield new TextEncoder().encode(RESTARTED_NOTICE);
      offset = chunk.next ?? 0;
      continue;
    }
    const start = chunk.start ?? offset;
    let data = chunk.data;
    if (start > offset) {
      options.onDropped?.({from: offset, to: start, bytes: start - offset});
      if (notice) yield new TextEncoder().encode(droppedNotice(start - offset));
    } else if (start < offset) {
      data = data.subarray(Math.min(data.length, offset - start));
    }
    const next = Math.max(offset, chunk.next ?? start + chunk.data.length);
    if (data.length > 0) yield data;
    offset = next;
    if (chunk.more && data.length > 0) continue;
    if (last) return;
    await sleep(options.intervalMs, signal);
  }
}

export interface RangeReaderOptions {
  /** The log's URL (a function when it changes, e.g. a SAS URL that expires). */
  url: string | (() => Promise<string>);
  headers?: Record<string, string> | (() => Promise<Record<string, string>>);
  /** Most bytes asked for per read (default 1 MiB): bounds memory; `more` says when there is more. */
  maxBytes?: number;
  /** Default: the global fetch. A vSphere datastore with its own CA or a session cookie passes its own. */
  fetch?: typeof fetch;
}

/** An HTTP error from a range read, with the status for `retryable`. */
export class RangeReadError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * `ConsolePollOptions.read` for a log served over HTTP with Range requests (an Azure boot
 * diagnostics blob, a vSphere datastore file): 206 gives the bytes from the offset, a 200
 * (a server that ignores Range) the whole log, 416 nothing new (or, when the log is now
 * shorter than the offset, a restart), 404 nothing yet (the log is created on first output).
 */
export function httpRangeReader(options: RangeReaderOptions): (offset: number, signal: AbortSignal) => Promise<ConsoleChunk> {
  const max = options.maxBytes ?? 1024 * 1024;
  const doFetch = options.fetch ?? fetch;
  return async (offset, signal) => {
    const url = typeof options.url === 'string' ? options.url : await options.url();
    const headers = typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {});
    const response = await doFetch(url, {headers: {...headers, Range: `bytes=${offset}-${offset + max - 1}`}, signal});
    const total = (range: string | null): number | undefined => {
      const match = /\/(\d+)\s*$/.exec(range ?? '');
      return match ? Number(match[1]) : undefined;
    };
    if (response.status === 404) {
      await response.body?.cancel();
      return {data: new Uint8Array(0)};
    }
    if (response.status === 416) {
      await response.body?.cancel();
      const size = total(response.headers.get('content-range'));
      return size !== undefined && size < offset ? {data: new Uint8Array(0), restarted: true, next: 0} : {data: new Uint8Array(0)};
    }
    if (response.status === 200) {
      const data = new Uint8Array(await response.arrayBuffer());
      if (data.length < offset) return {data: new Uint8Array(0), restarted: true, next: 0};
      return {data: data.subarray(offset, offset + max), start: offset, more: data.length > offset + max, next: Math.min(data.length, offset + max)};
    }
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      const data = new Uint8Array(await response.arrayBuffer());
      const start = range ? Number(range[1]) : offset;
      const size = range && range[3] !== '*' ? Number(range[3]) : undefined;
      return {data, start, more: size !== undefined && start + data.length < size};
    }
    await response.body?.cancel();
    throw new RangeReadError(response.status, `reading the console log failed: HTTP ${response.status} ${response.statusText}`);
  };
}
