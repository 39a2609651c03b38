// The provider kit's console poller against a console that takes an offset: each byte once
// and in order, a visible notice with the count where the cloud dropped bytes, overlap
// skipped, a restarted log announced, and the HTTP Range reader against a real server that
// answers 206, 200, 416 and 404 as Azure's blob service and a vSphere datastore do.
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {droppedNotice, httpRangeReader, pollConsole, RESTARTED_NOTICE, type ConsoleChunk} from '../../../src/provider-kit/console-poll.ts';

async function collect(stream: AsyncIterable<Uint8Array>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += Buffer.from(chunk).toString('latin1');
  return text;
}

/** A console whose cloud keeps only the last `window` bytes (GCE: 1 MiB), read as getSerialPortOutput answers. */
function windowedConsole(output: string, window: number, perRead: number) {
  let written = 0;
  const reads: number[] = [];
  return {
    reads,
    grow(bytes: number) {
      written = Math.min(output.length, written + bytes);
    },
    get done() {
      return written >= output.length;
    },
    async read(offset: number): Promise<ConsoleChunk> {
      reads.push(offset);
      const start = Math.max(offset, written - window);
      const end = Math.min(written, start + perRead);
      return {data: Buffer.from(output.slice(start, end), 'latin1'), start, next: end, more: end < written};
    },
  };
}

describe('pollConsole', () => {
  it('each byte once, in order, reading again at once while more is waiting', async () => {
    const output = Array.from({length: 500}, (_, i) => `line ${i}\n`).join('');
    const console = windowedConsole(output, 1 << 20, 1000);
    const stop = new AbortController();
    let polls = 0;
    const text = await collect(pollConsole({
      read: async (offset) => {
        polls++;
        console.grow(700);
        return console.read(offset);
      },
      intervalMs: 1,
      stopped: () => console.done,
      signal: stop.signal,
    }));
    expect(text).toBe(output);
    expect(polls).toBeGreaterThan(5);
  });

  it('bytes the cloud dropped: a visible notice with the count, in place, and onDropped', async () => {
    const output = 'A'.repeat(100) + 'B'.repeat(5000) + 'C'.repeat(100);
    const console = windowedConsole(output, 1000, 10_000);
    const dropped: Array<{from: number; to: number; bytes: number}> = [];
    let step = 0;
    const text = await collect(pollConsole({
      read: async (offset) => {
        console.grow(step++ === 0 ? 100 : 10_000); // the second poll comes after 5100 more bytes: 4100 fell out of the window
        return console.read(offset);
      },
      intervalMs: 1,
      stopped: () => console.done,
      signal: new AbortController().signal,
      onDropped: (info) => dropped.push(info),
    }));
    expect(dropped).toEqual([{from: 100, to: 4200, bytes: 4100}]);
    expect(text).toBe('A'.repeat(100) + droppedNotice(4100) + output.slice(4200));
    expect(droppedNotice(4100)).toMatch(/^\r\n\[tskit: 4100 bytes of console output were lost here: .*\]\r\n$/);
  });

  it('an answer that starts before the offset is trimmed; a restarted log is announced and read from 0', async () => {
    const answers: ConsoleChunk[] = [
      {data: Buffer.from('hello '), start: 0},
      {data: Buffer.from('hello world'), start: 0}, // a server that ignored the offset
      {data: Buffer.alloc(0), restarted: true, next: 0},
      {data: Buffer.from('again'), start: 0},
    ];
    let i = 0;
    const text = await collect(pollConsole({
      read: async () => answers[i++]!,
      intervalMs: 1,
      stopped: () => i >= answers.length - 1, // stopped: one last read, then the end
      signal: new AbortController().signal,
    }));
    expect(text).toBe(`hello world${RESTARTED_NOTICE}again`);
  });

  it('a transient read error is polled past when retryable, and thrown otherwise; an abort ends the stream', async () => {
    let calls = 0;
    const text = await collect(pollConsole({
      read: async (offset) => {
        if (++calls === 1) throw Object.assign(new Error('reset'), {code: 'ECONNRESET'});
        return {data: Buffer.from('ok').subarray(offset)};
      },
      intervalMs: 1,
      stopped: () => calls >= 2,
      signal: new AbortController().signal,
      retryable: (e) => (e as {code?: string}).code === 'ECONNRESET',
    }));
    expect(text).toBe('ok');
    await expect(collect(pollConsole({read: async () => Promise.reject(new Error('denied')), intervalMs: 1, stopped: () => false, signal: new AbortController().signal}))).rejects.toThrow('denied');
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 30);
    expect(await collect(pollConsole({read: async () => ({data: Buffer.alloc(0)}), intervalMs: 5, stopped: () => false, signal: stop.signal}))).toBe('');
  });
});

describe('httpRangeReader', () => {
  let server: Server;
  let base: string;
  let log = '';
  let mode: 'range' | 'ignore-range' | 'missing' = 'range';
  const ranges: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      ranges.push(req.headers.range ?? '');
      if (mode === 'missing') return res.writeHead(404).end();
      const body = Buffer.from(log);
      if (mode === 'ignore-range') return res.writeHead(200, {'content-length': body.length}).end(body);
      const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = Number(match![1]);
      const end = Math.min(body.length - 1, match![2] ? Number(match![2]) : body.length - 1);
      if (start >= body.length) return res.writeHead(416, {'content-range': `bytes */${body.length}`}).end();
      res.writeHead(206, {'content-range': `bytes ${start}-${end}/${body.length}`}).end(body.subarray(start, end + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/console.log`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('206 from the offset, capped at maxBytes with `more`; 416 is nothing new; a shorter log is a restart; 404 is nothing yet; 200 is sliced', async () => {
    const read = httpRangeReader({url: base, maxBytes: 4});
    const signal = new AbortController().signal;
    log = 'abcdefgh';
    expect(await read(0, signal)).toMatchObject({start: 0, more: true});
    expect(Buffer.from((await read(4, signal)).data).toString()).toBe('efgh');
    expect(ranges.slice(-2)).toEqual(['bytes=0-3', 'bytes=4-7']);
    expect((await read(8, signal)).data.length).toBe(0);
    log = 'new';
    expect(await read(8, signal)).toMatchObject({restarted: true, next: 0});
    mode = 'missing';
    expect((await read(0, signal)).data.length).toBe(0);
    mode = 'ignore-range';
    log = 'abcdefgh';
    const whole = await read(2, signal);
    expect([Buffer.from(whole.data).toString(), whole.start, whole.more]).toEqual(['cdef', 2, true]);
    mode = 'range';
  });

  it('through pollConsole: the whole log, each byte once', async () => {
    log = 'x'.repeat(10_000);
    let polls = 0;
    const text = await collect(pollConsole({read: httpRangeReader({url: base, maxBytes: 3000}), intervalMs: 1, stopped: () => ++polls > 8, signal: new AbortController().signal}));
    expect(text).toBe(log);
  });
});
