// Uploading many pieces (disk blocks, page ranges, multipart parts) with a bounded number in
// flight, stopping new work at the first failure and reporting progress at a steady pace.
import type {Emit} from '../events.ts';

export interface BoundedOptions<T> {
  /** Pieces in flight at once (at least 1). */
  concurrency: number;
  signal?: AbortSignal;
  /** Told which item failed first (its error is what forEachBounded throws). */
  onFailure?(item: T, error: unknown): void;
}

/**
 * Runs `work` over `items` (pulled lazily, so an async source is read only as fast as the
 * work goes: memory stays at `concurrency` items), with at most `concurrency` at once. The
 * first failure (or the signal aborting) stops new work; the rest in flight settle, then
 * that failure (or the signal's reason) is thrown. A failure of the source itself is thrown
 * the same way.
 */
export async function forEachBounded<T>(items: AsyncIterable<T> | Iterable<T>, options: BoundedOptions<T>, work: (item: T) => Promise<void>): Promise<void> {
  const limit = Math.max(1, Math.floor(options.concurrency));
  const inflight = new Set<Promise<void>>();
  let failed = false;
  let failure: unknown;
  const fail = (error: unknown): void => {
    if (failed) return;
    failed = true;
    failure = error;
  };
  try {
    for await (const item of items) {
      if (failed) break;
      if (options.signal?.aborted) {
        fail(options.signal.reason);
        break;
      }
      while (inflight.size >= limit) await Promise.race(inflight);
      if (failed) break;
      const task: Promise<void> = work(item)
        .catch((error: unknown) => {
          if (!failed) options.onFailure?.(item, error);
          fail(error);
        })
        .finally(() => inflight.delete(task));
      inflight.add(task);
    }
  } catch (error) {
    fail(error);
  }
  await Promise.all(inflight);
  if (failed) throw failure;
}

export interface ProgressOptions {
  task: string;
  total?: number;
  unit?: 'bytes' | 'items';
  /** Least milliseconds between two events (the last one is always sent with force). */
  intervalMs?: number;
}

/** A `progress` event emitter that sends at most one event per interval, unless forced. */
export function progressReporter(emit: Emit, options: ProgressOptions): (done: number, force?: boolean) => void {
  const interval = options.intervalMs ?? 250;
  let last = 0;
  return (done, force = false) => {
    const now = Date.now();
    if (!force && now - last < interval) return;
    last = now;
    emit({type: 'progress', task: options.task, done, ...(options.total !== undefined ? {total: options.total} : {}), unit: options.unit ?? 'bytes'});
  };
}
