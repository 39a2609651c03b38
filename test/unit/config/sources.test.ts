// Config sources: files, stdin, and URLs fetched from a real local HTTP server.
import {createServer, type Server} from 'node:http';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Readable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadConfig, validateSources} from '../../../src/config/load.ts';
import {ConfigError, formatProblem} from '../../../src/config/problems.ts';
import {TskitError} from '../../../src/errors.ts';

const good = 'onboot:\n  - name: a\n    image: alpine\n';
let dir: string;
let server: Server;
let base: string;
const hanging = new Set<import('node:http').ServerResponse>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-config-'));
  await writeFile(join(dir, 'good.yml'), good);
  await writeFile(join(dir, 'bad.yml'), 'onboot:\n  - name: a\n');
  server = createServer((req, res) => {
    if (req.url === '/good.yml') res.end(good);
    else if (req.url === '/redirect') res.writeHead(302, {location: '/good.yml'}).end();
    else if (req.url === '/hang') hanging.add(res);
    else res.writeHead(404).end('not here');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as {port: number};
  base = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, {recursive: true, force: true});
});

describe('config sources', () => {
  it('reads a file', async () => {
    const loaded = await loadConfig([join(dir, 'good.yml')]);
    expect(loaded.config.onboot).toEqual([{name: 'a', image: 'alpine'}]);
    expect(loaded.sources).toEqual([join(dir, 'good.yml')]);
  });

  it('throws ConfigError with every problem, formatted file:line:col', async () => {
    const err = await loadConfig([join(dir, 'bad.yml')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(TskitError);
    expect((err as ConfigError).problems.map(formatProblem)).toEqual([`${join(dir, 'bad.yml')}:2:5: onboot[0]: missing required field "image"`]);
    expect((err as Error).message).toContain(`${join(dir, 'bad.yml')}:2:5: onboot[0]: missing required field "image"`);
  });

  it('reads stdin once, named <stdin>', async () => {
    const loaded = await loadConfig(['-'], {stdin: Readable.from([Buffer.from(good)])});
    expect(loaded.sources).toEqual(['<stdin>']);
    expect(loaded.positionOf(['onboot', 0, 'image'])).toEqual({file: '<stdin>', line: 3, col: 12});
    await expect(loadConfig(['-', '-'], {stdin: Readable.from([good])})).rejects.toThrow('"-" (stdin) can be given only once');
  });

  it('names a missing file', async () => {
    await expect(loadConfig([join(dir, 'nope.yml')])).rejects.toThrow(`${join(dir, 'nope.yml')}: cannot read config file: no such file`);
    expect(await validateSources([join(dir, 'nope.yml'), join(dir, 'good.yml')], {mode: 'separate'})).toEqual([
      {file: join(dir, 'nope.yml'), line: 0, col: 0, message: 'cannot read config file: no such file'},
    ]);
  });

  it('fetches from loopback over http, following redirects', async () => {
    const loaded = await loadConfig([`${base}/good.yml`, `${base}/redirect`]);
    expect(loaded.config.onboot!.map((e) => e.name)).toEqual(['a', 'a']);
    expect(loaded.positionOf(['onboot', 1])).toEqual({file: `${base}/redirect`, line: 2, col: 5});
  });

  it('refuses plain http to other hosts, reports HTTP errors and timeouts', async () => {
    await expect(loadConfig(['http://example.com/x.yml'])).rejects.toThrow(
      'http://example.com/x.yml: only https:// URLs are fetched (plain http:// only from localhost)',
    );
    await expect(loadConfig([`${base}/missing.yml`])).rejects.toThrow(`${base}/missing.yml: HTTP 404 Not Found`);
    const t = Date.now();
    await expect(loadConfig([`${base}/hang`], {fetchTimeoutMs: 300})).rejects.toThrow(`${base}/hang: cannot fetch: no answer within 300 ms`);
    expect(Date.now() - t).toBeLessThan(5000);
  });
});
