// Runs an async job per item with several in flight (zlib's async calls run on libuv's
// thread pool, so deflate and inflate use every core) and yields the results in input
// order, so the output does not depend on which thread finished first.
export async function* orderedParallel<T, R>(items: AsyncIterable<T>, job: (item: T) => Promise<R>, inFlight: number): AsyncGenerator<{item: T; result: R}> {
  const queue: Array<{item: T; result: Promise<R>}> = [];
  try {
    for await (const item of items) {
      const result = job(item);
      result.catch(() => {}); // awaited below; an early failure must not be unhandled meanwhile
      queue.push({item, result});
      while (queue.length >= inFlight) {
        const next = queue.shift()!;
        yield {item: next.item, result: await next.result};
      }
    }
    while (queue.length > 0) {
      const next = queue.shift()!;
      yield {item: next.item, result: await next.result};
    }
  } finally {
    // on an early exit, let the jobs still running finish before their buffers go
    await Promise.allSettled(queue.map((q) => q.result));
  }
}
