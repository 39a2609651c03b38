import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterEach, describe, expect, it} from 'vitest';
import type {TskitEvent} from '../../../src/events.ts';
import {freePort} from '../../support/registry.ts';
import {ConnectionError, HttpTransport} from '../../../src/oci/transport.ts';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('HTTP transport', () => {
  it('retries 5xx and 429 (honouring Retry-After) with backoff, then succeeds', async () => {
    const statuses = [503, 429, 502, 200];
    const seen: number[] = [];
    const url = await serve((_req, res) => {
      const status = statuses.shift()!;
      seen.push(status);
      res.writeHead(status, status === 429 ? {'retry-after': '0'} : {}).end(status === 200 ? 'ok' : 'busy');
    });
    const events: TskitEvent[] = [];
    const transport = new HttpTransport({retry: {baseDelayMs: 5}, emit: (e) => events.push(e)});
    const response = await transport.send({method: 'GET', url: `${url}/v2/`});
    expect(response.status).toBe(200);
    expect(await response.body.text()).toBe('ok');
    expect(seen).toEqual([503, 429, 502, 200]);
    expect(events.filter((e) => e.type === 'log' && e.level === 'warn')).toHaveLength(3);
    await transport.close();
  });

  it('gives up after the attempts allowed and returns the last answer', async () => {
    let count = 0;
    const url = await serve((_req, res) => {
      count++;
      res.writeHead(500).end();
    });
    const transport = new HttpTransport({retry: {attempts: 3, baseDelayMs: 1}});
    expect((await transport.send({method: 'GET', url})).status).toBe(500);
    expect(count).toBe(3);
    // A PATCH with a streamed body is never retried blindly.
    expect((await transport.send({method: 'PATCH', url, body: Buffer.from('x')})).status).toBe(500);
    expect(count).toBe(4);
    await transport.close();
  });

  it('retries refused connections, then fails naming the URL', async () => {
    const port = await freePort();
    const transport = new HttpTransport({retry: {attempts: 2, baseDelayMs: 1}});
    const error = await transport.send({method: 'GET', url: `http://127.0.0.1:${port}/v2/`}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain(`GET http://127.0.0.1:${port}/v2/ failed`);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect((error as Error).message).toContain('after 2 attempts');
    await transport.close();
  });

  it('times out a silent server', async () => {
    const url = await serve(() => {
      // never answers
    });
    const transport = new HttpTransport({retry: {attempts: 1}, timeouts: {headersMs: 200}});
    const started = Date.now();
    await expect(transport.send({method: 'GET', url})).rejects.toThrow(/UND_ERR_HEADERS_TIMEOUT|Headers Timeout/i);
    expect(Date.now() - started).toBeLessThan(5_000);
    await transport.close();
  });

  it('follows redirects, dropping credentials when the origin changes', async () => {
    const authSeen: Array<string | undefined> = [];
    const other = createServer((req, res) => {
      authSeen.push(req.headers.authorization);
      res.writeHead(200).end('blob');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherUrl = `http://localhost:${(other.address() as AddressInfo).port}/storage/blob?sig=secret`;
    try {
      const url = await serve((req, res) => {
        authSeen.push(req.headers.authorization);
        res.writeHead(307, {location: otherUrl}).end();
      });
      const transport = new HttpTransport();
      const response = await transport.send({method: 'GET', url: `${url}/v2/x/blobs/sha256:1`, headers: {authorization: 'Bearer t0ken'}});
      expect(await response.body.text()).toBe('blob');
      expect(authSeen).toEqual(['Bearer t0ken', undefined]);
      await transport.close();
    } finally {
      other.closeAllConnections();
      other.close();
    }
  });
});
