// A flaky network between tskit and the AWS peer: on a share of requests it drops the
// connection (before forwarding, or after, losing the answer to a PUT), or answers with
// what AWS answers when it is unwell: 500 InternalError, 503 ServiceUnavailable, S3's 503
// SlowDown, EBS's throttling. `down()` makes every request fail from then on. The faults
// come from a seeded generator, so a failing run can be repeated. Test material.
import {createServer, request as httpRequest, type IncomingMessage, type ServerResponse} from 'node:http';
import type {Socket} from 'node:net';

export interface FaultOptions {
  target: string;
  /** Share of requests that fail, 0..1. */
  rate: number;
  seed?: number;
  /** Only requests whose service (from the signature scope) is in this list are hurt (default: all). */
  services?: string[];
  /** Milliseconds every forwarded request waits first (a slow link). */
  delayMs?: number;
}

export interface FaultProxy {
  url: string;
  /** Requests and request body bytes seen, and how many of each fault was injected. */
  stats: {requests: number; bytesIn: number; dropped: number; droppedAfter: number; status500: number; status503: number; throttled: number};
  /** From now on, refuse every connection (the peer is down). */
  down(): void;
  stop(): Promise<void>;
}

/** mulberry32: small, seedable, good enough to spread faults. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The body is forwarded whole with a content-length: the client's chunked framing is gone. */
function withoutChunking(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const {'transfer-encoding': _te, ...rest} = headers;
  return rest;
}

function serviceOf(req: IncomingMessage): string {
  return /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
}

function errorAnswer(res: ServerResponse, service: string, kind: '500' | '503' | 'throttle'): void {
  let status = kind === '500' ? 500 : 503;
  let body: string;
  const headers: Record<string, string> = {};
  if (service === 's3') {
    const code = kind === '500' ? 'InternalError' : kind === '503' ? 'ServiceUnavailable' : 'SlowDown';
    body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${kind === 'throttle' ? 'Please reduce your request rate.' : 'We encountered an internal error. Please try again.'}</Message><RequestId>F1</RequestId></Error>`;
    headers['content-type'] = 'application/xml';
  } else if (service === 'ebs') {
    const type = kind === '500' ? 'InternalServerException' : kind === '503' ? 'ServiceUnavailableException' : 'RequestThrottledException';
    if (kind === 'throttle') status = 429;
    body = JSON.stringify({message: 'injected fault', Reason: kind === 'throttle' ? 'ACCOUNT_THROTTLED' : undefined});
    headers['content-type'] = 'application/json';
    headers['x-amzn-errortype'] = type;
  } else {
    const code = kind === '500' ? 'InternalError' : kind === '503' ? 'Unavailable' : 'RequestLimitExceeded';
    body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>injected fault</Message></Error></Errors><RequestID>F1</RequestID></Response>`;
    headers['content-type'] = 'text/xml';
  }
  res.writeHead(status, {...headers, 'content-length': String(Buffer.byteLength(body))});
  res.end(body);
}

export async function startFaultProxy(options: FaultOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = generator(options.seed ?? 1);
  const stats = {requests: 0, bytesIn: 0, dropped: 0, droppedAfter: 0, status500: 0, status503: 0, throttled: 0};
  let isDown = false;
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      stats.bytesIn += c.length;
    });
    req.on('end', () => {
      stats.requests++;
      if (isDown) {
        req.socket.destroy();
        return;
      }
      const service = serviceOf(req);
      const eligible = !options.services || options.services.includes(service);
      const roll = eligible ? random() : 1;
      const share = options.rate / 5;
      if (roll < share) {
        stats.dropped++;
        req.socket.destroy();
        return;
      }
      if (roll < 2 * share) {
        stats.status500++;
        return errorAnswer(res, service, '500');
      }
      if (roll < 3 * share) {
        stats.status503++;
        return errorAnswer(res, service, '503');
      }
      if (roll < 4 * share) {
        stats.throttled++;
        return errorAnswer(res, service, 'throttle');
      }
      // The last share: forward, then lose the answer, but only for PUTs (idempotent writes).
      const loseAnswer = roll < 5 * share && req.method === 'PUT';
      const body = Buffer.concat(chunks);
      if (options.delayMs) setTimeout(() => forward(body, loseAnswer), options.delayMs);
      else forward(body, loseAnswer);
    });
    const forward = (body: Buffer, loseAnswer: boolean): void => {
      const upstream = httpRequest({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: {...withoutChunking(req.headers), host: target.host, 'content-length': String(body.length)}}, (answer) => {
        if (loseAnswer) {
          stats.droppedAfter++;
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => req.socket.destroy());
      upstream.end(body);
    };
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (isDown) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as {port: number};
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    down() {
      isDown = true;
      for (const socket of sockets) socket.destroy();
      server.close();
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
