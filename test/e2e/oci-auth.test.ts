// Registry authentication against the real docker-registry: bearer tokens from a token
// server (RS256 JWTs signed with an openssl-made certificate), htpasswd Basic auth, and
// credentials from Docker's config.json (auths, identity tokens, credential helpers).
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../src/errors.ts';
import type {TskitEvent} from '../../src/events.ts';
import {ImageCache} from '../../src/oci/cache.ts';
import {DockerConfigCredentials} from '../../src/oci/credentials.ts';
import {platformForArch} from '../../src/oci/platform.ts';
import {pushImage} from '../../src/oci/push.ts';
import {RegistryClient} from '../../src/oci/registry.ts';
import {imageFiles} from '../support/oci-cache-helpers.ts';
import {inspectDigest, pushLayout, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {htpasswdLine, startTokenServer, type TokenServer} from '../support/oci-token-server.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const PASSWORD = 'wonder-land-s3cret';
const REFRESH = 'refresh-token-s3cret';
const amd64 = platformForArch('amd64');
let work: string;
let image: WrittenLayout;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-auth-'));
  image = await writeOciLayout(join(work, 'image'), 'v1', {architecture: 'amd64', layers: [{'etc/a': 'a'}, {'etc/b': 'b'}, {'etc/c': 'c'}]});
});
afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true});
});

/** A DOCKER_CONFIG directory with this config.json. */
async function dockerConfig(config: object, extraPath?: string): Promise<DockerConfigCredentials> {
  const dir = await mkdtemp(join(work, 'docker-'));
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const env = {...process.env, DOCKER_CONFIG: dir, ...(extraPath ? {PATH: `${extraPath}:${process.env.PATH}`} : {})};
  return new DockerConfigCredentials({env});
}

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

function collect(): {events: TskitEvent[]; emit: (e: TskitEvent) => void} {
  const events: TskitEvent[] = [];
  return {events, emit: (e) => events.push(e)};
}

describe('bearer token auth (distribution token protocol)', () => {
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let ref: string;

  beforeAll(async () => {
    tokens = await startTokenServer({users: {alice: PASSWORD}, refreshTokens: {[REFRESH]: 'alice'}});
    registry = await startRegistry({authYaml: tokens.authYaml});
    await pushLayout(image, registry.host, 'private/app:v1', {creds: `alice:${PASSWORD}`});
    ref = `${registry.host}/private/app:v1`;
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('pulls with config.json credentials, one token for the whole pull', async () => {
    const credentials = await dockerConfig({auths: {[registry.host]: {auth: basic('alice', PASSWORD)}}});
    const before = tokens.requests.length;
    const {events, emit} = collect();
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}, emit});
    const resolved = await cache.resolve(ref, amd64);
    expect(await imageFiles(cache, resolved)).toEqual({'etc/a': 'a', 'etc/b': 'b', 'etc/c': 'c'});
    await cache.close();
    const made = tokens.requests.slice(before);
    expect(made).toEqual([{account: 'alice', scopes: ['repository:private/app:pull']}]);
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
  });

  it('pushes with a pull,push token, mounting from the repository it came from', async () => {
    const credentials = await dockerConfig({auths: {[registry.host]: {auth: basic('alice', PASSWORD)}}});
    const client = new RegistryClient({credentials});
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), client});
    await cache.resolve(ref, amd64);
    const before = tokens.requests.length;
    const result = await pushImage(cache, client, ref, `${registry.host}/private/pushed:v2`);
    expect(result.blobs.mounted).toBe(4);
    expect(tokens.requests.slice(before).map((r) => [...r.scopes].sort())).toContainEqual(['repository:private/app:pull', 'repository:private/pushed:pull,push']);
    expect(await inspectDigest(registry.host, 'private/pushed:v2', `alice:${PASSWORD}`)).toBe(image.images[0]!.manifest.digest);
    await cache.close();
    await client.close();
  });

  it('says authentication is required when there are no credentials', async () => {
    const credentials = await dockerConfig({auths: {}});
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}});
    const error = await cache.resolve(ref, amd64).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toContain(`authentication required for ${ref} at ${registry.host}`);
    expect((error as Error).message).toContain(`docker login ${registry.host}`);
    await cache.close();
  });

  it('names the user but never the password when the token server refuses', async () => {
    const credentials = await dockerConfig({auths: {[`https://${registry.host}`]: {auth: basic('alice', 'wrong-password')}}});
    const {events, emit} = collect();
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}, emit});
    const error = await cache.resolve(ref, amd64).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toContain(`refused the credentials for user "alice" (HTTP 401)`);
    expect((error as Error).message).toContain('config.json');
    expect((error as Error).message).not.toContain('wrong-password');
    expect(JSON.stringify(events)).not.toContain('wrong-password');
    await cache.close();
  });

  it('exchanges an identity token (OAuth2 refresh token) for an access token', async () => {
    const credentials = await dockerConfig({auths: {[registry.host]: {identitytoken: REFRESH}}});
    const before = tokens.requests.length;
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}});
    expect((await cache.resolve(ref, amd64)).digest).toBe(image.images[0]!.manifest.digest);
    await cache.close();
    expect(tokens.requests.slice(before)).toEqual([{account: 'alice', scopes: ['repository:private/app:pull'], grant: 'refresh_token'}]);
  });

  it('asks a credential helper named by credsStore or credHelpers', async () => {
    const bin = join(work, 'bin');
    await mkdir(bin, {recursive: true});
    const helper = join(bin, 'docker-credential-tskit-test');
    // A real helper speaking the protocol: server URL on stdin, JSON on stdout.
    await writeFile(
      helper,
      `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${registry.host}" ]; then\n  printf '{"ServerURL":"%s","Username":"alice","Secret":"${PASSWORD}"}' "$server"\nelse\n  echo "credentials not found in native keychain"; exit 1\nfi\n`,
    );
    await chmod(helper, 0o755);
    for (const config of [{credsStore: 'tskit-test'}, {credHelpers: {[registry.host]: 'tskit-test'}}]) {
      const credentials = await dockerConfig(config, bin);
      const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}});
      expect((await cache.resolve(ref, amd64)).digest).toBe(image.images[0]!.manifest.digest);
      await cache.close();
    }
  });
});

describe('htpasswd basic auth', () => {
  let registry: RunningRegistry;
  let ref: string;

  beforeAll(async () => {
    const dir = await mkdtemp(join(work, 'htpasswd-'));
    const file = join(dir, 'htpasswd');
    await writeFile(file, `${await htpasswdLine('bob', PASSWORD)}\n`);
    registry = await startRegistry({authYaml: ['  htpasswd:', '    realm: tskit-test', `    path: ${file}`].join('\n')});
    await pushLayout(image, registry.host, 'basic/app:v1', {creds: `bob:${PASSWORD}`});
    ref = `${registry.host}/basic/app:v1`;
  }, 60_000);
  afterAll(async () => registry?.stop());

  it('pulls with Basic credentials from config.json', async () => {
    const credentials = await dockerConfig({auths: {[`http://${registry.host}/v2/`]: {auth: basic('bob', PASSWORD)}}});
    const {events, emit} = collect();
    const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}, emit});
    expect((await cache.resolve(ref, amd64)).digest).toBe(image.images[0]!.manifest.digest);
    await cache.close();
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
  });

  it('fails clearly without credentials and with wrong ones', async () => {
    for (const config of [{}, {auths: {[registry.host]: {auth: basic('bob', 'nope')}}}]) {
      const credentials = await dockerConfig(config);
      const cache = new ImageCache({dir: await mkdtemp(join(work, 'c-')), registry: {credentials}});
      const error = await cache.resolve(ref, amd64).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TskitError);
      expect((error as Error).message).toContain(`authentication required for ${ref} at ${registry.host}`);
      expect((error as Error).message).not.toContain('nope');
      await cache.close();
    }
  });
});
