// Test material: an HTTP proxy in front of a registry that records every request it
// forwards, and can hold matching requests until released (to catch a pull mid-way).
import {createServer, request as httpRequest, type IncomingMessage, type ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface CountingProxy {
  host: string;
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted (an https probe counts here, but is no request). */
  connections: number;
  /** Answers matching requests with `status` itself instead of forwarding them; returns an undo function. */
  refuse(match: (req: RecordedRequest) => boolean, status: number): () => void;
  /** The next response to a matching request is cut (connection destroyed) after `bytes` body bytes. */
  breakOnce(match: (req: RecordedRequest) => boolean, bytes: number): void;
  /** Holds requests matching `match` until the returned function is called. */
  hold(match: (req: RecordedRequest) => boolean): {release: () => void; held: Promise<void>};
  stop(): Promise<void>;
}

export async function startCountingProxy(target: string, bind = '127.0.0.1'): Promise<CountingProxy> {
  const [targetHost, targetPort] = target.split(':');
  const requests: RecordedRequest[] = [];
  const holds: Array<{match: (req: RecordedRequest) => boolean; gate: Promise<void>; arrived: () => void}> = [];
  const state = {connections: 0};
  const refusals: Array<{match: (req: RecordedRequest) => boolean; status: number}> = [];
  const breaks: Array<{match: (req: RecordedRequest) => boolean; bytes: number}> = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const recorded: RecordedRequest = {method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers};
    requests.push(recorded);
    for (const hold of holds) {
      if (hold.match(recorded)) {
        hold.arrived();
        await hold.gate;
      }
    }
    const refusal = refusals.find((r) => r.match(recorded));
    if (refusal) {
      req.resume();
      res.writeHead(refusal.status, {'content-type': 'application/json'});
      res.end(JSON.stringify({errors: [{code: 'UNSUPPORTED', message: 'refused by the test proxy'}]}));
      return;
    }
    const upstream = httpRequest(
      {host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers},
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const cut = breaks.findIndex((b) => b.match(recorded));
        if (cut < 0 || answer.statusCode !== 200) {
          answer.pipe(res);
          return;
        }
        const limit = breaks[cut]!.bytes;
        breaks.splice(cut, 1);
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.length;
          res.write(part);
          if (sent >= limit) res.socket?.destroy();
        });
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.on('connection', () => state.connections++);
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, bind, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `${bind.includes(':') ? `[${bind}]` : bind}:${port}`,
    port,
    requests,
    get connections() {
      return state.connections;
    },
    refuse(match, status) {
      const entry = {match, status};
      refusals.push(entry);
      return () => {
        refusals.splice(refusals.indexOf(entry), 1);
      };
    },
    breakOnce(match, bytes) {
      breaks.push({match, bytes});
    },
    hold(match) {
      let release!: () => void;
      let arrived!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const held = new Promise<void>((resolve) => (arrived = resolve));
      holds.push({match, gate, arrived});
      return {release, held};
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
