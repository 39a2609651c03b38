import {createServer, type Socket} from 'node:net';
import {networkInterfaces} from 'node:os';
import type {AddressInfo} from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import {ImageCache} from '../../../src/oci/cache.ts';
import {registryOptionsFromFlags} from '../../../src/cli/image-flags.ts';
import {EndpointResolver, isLoopbackHost, parseMirrors, redactUrl} from '../../../src/oci/endpoints.ts';
import {platformForArch} from '../../../src/oci/platform.ts';
import {parseReference} from '../../../src/oci/reference.ts';
import {RegistryClient} from '../../../src/oci/registry.ts';
import {pushLayout, writeOciLayout} from '../../support/oci-images.ts';
import {startCountingProxy} from '../../support/oci-proxy.ts';
import {startRegistry, type RunningRegistry} from '../../support/registry.ts';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

describe('mirrors and transport policy', () => {
  it('parses LinuxKit-style mirror specs; docker.io covers its aliases; later specs win', () => {
    const mirrors = parseMirrors(['http://all.example', 'docker.io=https://hub-mirror.example/prefix', 'ghcr.io=https://g.example', 'ghcr.io=https://g2.example']);
    expect(mirrors.get('*')).toBe('http://all.example');
    for (const alias of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) expect(mirrors.get(alias)).toBe('https://hub-mirror.example/prefix');
    expect(mirrors.get('ghcr.io')).toBe('https://g2.example');
    expect(() => parseMirrors(['docker.io=mirror.example'])).toThrow('mirror "mirror.example" must start with http:// or https://');
  });

  it('maps registries to endpoints: docker.io to registry-1.docker.io, mirrors with path prefixes', () => {
    const resolver = new EndpointResolver({mirrors: parseMirrors(['docker.io=https://m.example/p/', 'https://catch.example'])});
    expect(resolver.resolve('docker.io')).toMatchObject({host: 'm.example', scheme: 'https', pathPrefix: 'p', mirror: 'https://m.example/p/'});
    expect(resolver.resolve('quay.io')).toMatchObject({host: 'catch.example', scheme: 'https', pathPrefix: ''});
    expect(new EndpointResolver().resolve('docker.io')).toMatchObject({host: 'registry-1.docker.io', scheme: 'https'});
    expect(new EndpointResolver().resolve('example.com:5000')).toMatchObject({host: 'example.com:5000', scheme: 'https', insecureTls: false});
    expect(new EndpointResolver().resolve('127.0.0.1:5000')).toMatchObject({scheme: 'https-or-http', insecureTls: false});
    expect(new EndpointResolver({insecureRegistries: ['example.com']}).resolve('example.com:5000')).toMatchObject({scheme: 'https-or-http', insecureTls: true});
  });

  it('knows loopback hosts', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', '::1', 'registry.localhost']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['10.0.0.1:5000', 'example.com', '[fd00::2]:5000', '128.0.0.1']) expect(isLoopbackHost(host)).toBe(false);
  });

  it('reads mirrors and insecure hosts from the environment, flags after', async () => {
    const options = await registryOptionsFromFlags(
      {mirror: ['docker.io=https://flag.example'], 'insecure-registry': ['b.example']},
      undefined,
      {TSKIT_MIRROR: 'docker.io=https://env.example, https://all.example', TSKIT_INSECURE_REGISTRIES: 'a.example:5000,c.example'},
    );
    expect(options.mirrors?.get('docker.io')).toBe('https://flag.example');
    expect(options.mirrors?.get('*')).toBe('https://all.example');
    expect(options.insecureRegistries).toEqual(['a.example:5000', 'c.example', 'b.example']);
  });

  it('never shows query strings (pre-signed URLs) or credentials', () => {
    expect(redactUrl('https://user:pw@blob.example/x?X-Amz-Signature=abc')).toBe('https://blob.example/x?…');
  });
});

const external = Object.values(networkInterfaces())
  .flat()
  .find((address) => address && !address.internal && address.family === 'IPv4')?.address;

describe.skipIf(!external)(`plain http to a non-loopback host (${external})`, () => {
  let registry: RunningRegistry;
  let work: string;
  beforeAll(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'tskit-oci-http-'));
    await pushLayout(await writeOciLayout(join(work, 'img'), 'v1', {architecture: 'amd64', layers: [{f: 'x'}]}), registry.host, 'x/app:v1');
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, {recursive: true, force: true});
  });

  it('is refused before connecting unless the host is named with --insecure-registry', async () => {
    const proxy = await startCountingProxy(registry.host, external);
    try {
      const client = new RegistryClient({mirrors: parseMirrors([`http://${proxy.host}`])});
      const error = await client.getManifest(parseReference('example.com/x/app:v1')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TskitError);
      expect((error as Error).message).toContain(`uses plain http, which tskit only allows for loopback hosts: name it with --insecure-registry ${proxy.host}`);
      expect(proxy.connections).toBe(0);
      await client.close();

      const cache = new ImageCache({
        dir: await mkdtemp(join(work, 'cache-')),
        registry: {mirrors: parseMirrors([`http://${proxy.host}`]), insecureRegistries: [proxy.host]},
      });
      const image = await cache.resolve('example.com/x/app:v1', platformForArch('amd64'));
      expect(image.layers).toHaveLength(1);
      expect(proxy.requests.length).toBeGreaterThan(0);
      await cache.close();
    } finally {
      await proxy.stop();
    }
  });

  it('speaks only TLS to a registry named by a non-loopback address', async () => {
    const firstBytes: Buffer[] = [];
    const server = createServer((socket: Socket) => {
      socket.once('data', (chunk: Buffer) => {
        firstBytes.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, external, resolve));
    const host = `${external}:${(server.address() as AddressInfo).port}`;
    try {
      const client = new RegistryClient({retry: {attempts: 1}});
      await expect(client.getManifest(parseReference(`${host}/x/app:v1`))).rejects.toThrow(TskitError);
      await client.close();
      expect(firstBytes.length).toBe(1);
      expect(firstBytes[0]![0]).toBe(0x16); // a TLS handshake record, never "GET /v2/..."
    } finally {
      server.close();
    }
  });
});
