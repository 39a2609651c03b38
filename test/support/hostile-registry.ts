// Test material: a registry that misbehaves on purpose. It serves the distribution API's read
// side (GET/HEAD of /v2/, manifests and blobs, Range requests answered with 206) from blobs
// and tags held in memory, and each fault below makes it answer the way a broken or hostile
// registry does, so the tests can mount the attack themselves. Not product code.
import {createHash} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http';
import type {AddressInfo, Socket} from 'node:net';
import {join} from 'node:path';

export interface StoredBlob {
  bytes: Buffer;
  mediaType?: string;
}

export type Fault =
  /** The first GET of the blob sends `afterBytes` body bytes and drops the connection; any later GET (a Range request included) gets the whole blob with 200. */
  | {kind: 'cut-then-full'; digest: string; afterBytes: number}
  /** Matching requests are accepted and never answered (no status line, no headers). */
  | {kind: 'no-headers'; match: (path: string) => boolean}
  /** Matching blob GETs send their headers, then `bytesPerTick` bytes every `tickMs` for ever. */
  | {kind: 'trickle'; match: (path: string) => boolean; bytesPerTick: number; tickMs: number};

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  status?: number;
}

export interface HostileRegistry {
  /** host:port, as it appears in image references. */
  host: string;
  requests: RecordedRequest[];
  blobs: Map<string, StoredBlob>;
  /** Adds a blob (manifest, config or layer); returns its digest. */
  put(bytes: Buffer, mediaType?: string): string;
  /** Points repository:tag at a digest. */
  tag(repository: string, tag: string, digest: string): void;
  fault(fault: Fault): void;
  stop(): Promise<void>;
}

export const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export async function startHostileRegistry(): Promise<HostileRegistry> {
  const blobs = new Map<string, StoredBlob>();
  const tags = new Map<string, string>();
  const faults: Fault[] = [];
  const requests: RecordedRequest[] = [];
  const cutDone = new Set<string>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const recorded: RecordedRequest = {method: req.method ?? 'GET', path, ...(req.headers.range ? {range: String(req.headers.range)} : {})};
    requests.push(recorded);
    const answer = (status: number, headers: Record<string, string | number> = {}, body?: Buffer) => {
      recorded.status = status;
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (faults.some((f) => f.kind === 'no-headers' && f.match(path))) return; // hold the request open, say nothing
    if (path === '/v2/' || path === '/v2') return answer(200, {'content-type': 'application/json'}, Buffer.from('{}'));
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(path);
    if (!m) return answer(404);
    const [, repository, kind, reference] = m as unknown as [string, string, string, string];
    const digest = reference.includes(':') ? reference : tags.get(`${repository}:${reference}`);
    const blob = digest ? blobs.get(digest) : undefined;
    if (!digest || !blob) {
      return answer(404, {'content-type': 'application/json'}, Buffer.from(JSON.stringify({errors: [{code: kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', message: 'unknown'}]})));
    }
    const base = {'docker-content-digest': digest, 'content-type': blob.mediaType ?? 'application/octet-stream'};
    if (kind === 'manifests') return answer(200, {...base, 'content-length': blob.bytes.length}, blob.bytes);

    const trickle = faults.find((f): f is Extract<Fault, {kind: 'trickle'}> => f.kind === 'trickle' && f.match(path));
    if (trickle && req.method === 'GET') {
      recorded.status = 200;
      res.writeHead(200, {...base, 'content-length': blob.bytes.length});
      let sent = 0;
      const timer = setInterval(() => {
        const part = blob.bytes.subarray(sent, Math.min(sent + trickle.bytesPerTick, blob.bytes.length - 1)); // never the last byte
        sent += part.length;
        if (part.length) res.write(part);
      }, trickle.tickMs);
      timers.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
      return;
    }
    const cut = faults.find((f): f is Extract<Fault, {kind: 'cut-then-full'}> => f.kind === 'cut-then-full' && f.digest === digest);
    if (cut && req.method === 'GET') {
      if (!cutDone.has(digest)) {
        cutDone.add(digest);
        recorded.status = 200;
        res.writeHead(200, {...base, 'content-length': blob.bytes.length});
        res.write(blob.bytes.subarray(0, cut.afterBytes), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      return answer(200, {...base, 'content-length': blob.bytes.length}, blob.bytes); // ignores Range
    }
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range && Number(range[1]) < blob.bytes.length) {
      const start = Number(range[1]);
      return answer(206, {...base, 'content-length': blob.bytes.length - start, 'content-range': `bytes ${start}-${blob.bytes.length - 1}/${blob.bytes.length}`}, blob.bytes.subarray(start));
    }
    return answer(200, {...base, 'content-length': blob.bytes.length}, blob.bytes);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    blobs,
    put(bytes, mediaType) {
      const digest = sha256(bytes);
      blobs.set(digest, {bytes, ...(mediaType ? {mediaType} : {})});
      return digest;
    },
    tag(repository, tag, digest) {
      tags.set(`${repository}:${tag}`, digest);
    },
    fault(fault) {
      faults.push(fault);
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Serves an OCI image layout (as writeOciLayout writes one) as repository:tag. */
export async function serveLayout(registry: HostileRegistry, layoutDir: string, repository: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; mediaType: string}>};
  const walk = async (digest: string, mediaType?: string): Promise<void> => {
    const bytes = await readFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7)));
    registry.put(bytes, mediaType);
    if (!mediaType || !/manifest|index/.test(mediaType)) return;
    const json = JSON.parse(bytes.toString('utf8')) as {manifests?: Array<{digest: string; mediaType: string}>; config?: {digest: string; mediaType: string}; layers?: Array<{digest: string; mediaType: string}>};
    for (const child of json.manifests ?? []) await walk(child.digest, child.mediaType);
    if (json.config) await walk(json.config.digest, json.config.mediaType);
    for (const layer of json.layers ?? []) await walk(layer.digest, layer.mediaType);
  };
  const root = index.manifests[0]!;
  await walk(root.digest, root.mediaType);
  registry.tag(repository, tag, root.digest);
  return root.digest;
}
