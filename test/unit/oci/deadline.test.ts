// Deadlines and interruption of registry downloads, against a registry that never answers:
// headers timeouts get two attempts (not the five other failures get), one deadline bounds a
// whole download, and an abort signal (Ctrl-C) ends it at once with its own reason.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import {parseReference} from '../../../src/oci/reference.ts';
import {RegistryClient} from '../../../src/oci/registry.ts';
import {sha256, startHostileRegistry, type HostileRegistry} from '../../support/hostile-registry.ts';

let registry: HostileRegistry;
let work: string;
const blob = Buffer.alloc(100_000, 7);
const digest = sha256(blob);

beforeAll(async () => {
  registry = await startHostileRegistry();
  registry.put(blob);
  registry.fault({kind: 'no-headers', match: (path) => path.includes('/silent/')});
  work = await mkdtemp(join(tmpdir(), 'tskit-deadline-'));
});
afterAll(async () => {
  await registry.stop();
  await rm(work, {recursive: true, force: true});
});

const descriptor = {mediaType: 'application/octet-stream', digest, size: blob.length};

describe('registry download deadlines', () => {
  it('gives a server that sends no headers two attempts, not five', async () => {
    const client = new RegistryClient({timeouts: {headersMs: 300}, retry: {attempts: 5, baseDelayMs: 10}});
    const ref = parseReference(`${registry.host}/silent/a:v1`);
    const before = registry.requests.length;
    const started = Date.now();
    const error = await client.downloadBlob(ref, descriptor, join(work, 'a')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toMatch(/Headers Timeout|UND_ERR_HEADERS_TIMEOUT/);
    expect(registry.requests.slice(before).filter((r) => r.path.includes('/silent/'))).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(10_000);
    await client.close();
  });

  it('ends a download at its deadline, retries included', async () => {
    const client = new RegistryClient({deadlineMs: 700, timeouts: {headersMs: 60_000}});
    const started = Date.now();
    await expect(client.downloadBlob(parseReference(`${registry.host}/silent/b:v1`), descriptor, join(work, 'b'))).rejects.toThrow(
      `blob ${digest} of image ${registry.host}/silent/b:v1 from ${registry.host}: not complete within 700ms`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    await client.close();
  });

  it('stops at once when its abort signal fires, with the signal\'s reason', async () => {
    const abort = new AbortController();
    const client = new RegistryClient({signal: abort.signal});
    setTimeout(() => abort.abort(new TskitError('interrupted by SIGINT', {exitCode: 130})), 200);
    const started = Date.now();
    await expect(client.getManifest(parseReference(`${registry.host}/silent/c:v1`))).rejects.toThrow('interrupted by SIGINT');
    expect(Date.now() - started).toBeLessThan(10_000);
    await client.close();
  });

  it('downloads from a registry that behaves, within its deadline', async () => {
    const client = new RegistryClient({deadlineMs: 5_000});
    await client.downloadBlob(parseReference(`${registry.host}/fine/a:v1`), descriptor, join(work, 'ok'));
    await client.close();
  });
});
