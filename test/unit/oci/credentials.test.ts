import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {TskitEvent} from '../../../src/events.ts';
import {parseChallenges} from '../../../src/oci/auth.ts';
import {DockerConfigCredentials} from '../../../src/oci/credentials.ts';

describe('WWW-Authenticate parsing', () => {
  it('reads a bearer challenge', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      {scheme: 'bearer', params: {realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull'}},
    ]);
  });
  it('reads several challenges, unquoted values and escapes', () => {
    expect(parseChallenges('Basic realm="reg \\"one\\"", Bearer realm=https://t.example/token, service=svc')).toEqual([
      {scheme: 'basic', params: {realm: 'reg "one"'}},
      {scheme: 'bearer', params: {realm: 'https://t.example/token', service: 'svc'}},
    ]);
  });
});

describe("Docker's config.json", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tskit-creds-'));
  });
  afterAll(async () => rm(dir, {recursive: true, force: true}));

  const store = async (config: unknown, events?: TskitEvent[]) => {
    const configDir = await mkdtemp(join(dir, 'c-'));
    await writeFile(join(configDir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return new DockerConfigCredentials({env: {DOCKER_CONFIG: configDir, PATH: '/usr/bin:/bin'}, ...(events ? {emit: (e: TskitEvent) => events.push(e)} : {})});
  };
  const auth = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');

  it("finds docker.io's entry under https://index.docker.io/v1/ for registry-1.docker.io", async () => {
    const credentials = await store({auths: {'https://index.docker.io/v1/': {auth: auth('hubuser', 'hubpass')}}});
    expect(await credentials.get('registry-1.docker.io')).toEqual({username: 'hubuser', password: 'hubpass'});
    expect(await credentials.get('docker.io')).toEqual({username: 'hubuser', password: 'hubpass'});
    expect(await credentials.get('ghcr.io')).toBeUndefined();
  });

  it('matches URL-shaped keys by host, and reads username/password and identity tokens', async () => {
    const credentials = await store({
      auths: {
        'https://reg.example:5000/v2/': {auth: auth('u', 'p:with:colons')},
        'other.example': {username: 'x', password: 'y'},
        'token.example': {identitytoken: 'refresh'},
      },
    });
    expect(await credentials.get('reg.example:5000')).toEqual({username: 'u', password: 'p:with:colons'});
    expect(await credentials.get('other.example')).toEqual({username: 'x', password: 'y'});
    expect(await credentials.get('token.example')).toEqual({identityToken: 'refresh'});
  });

  it('is anonymous without a config file, and names the file when it is broken', async () => {
    const missing = new DockerConfigCredentials({env: {DOCKER_CONFIG: join(dir, 'nope')}});
    expect(await missing.get('x.example')).toBeUndefined();
    const broken = await store('{not json');
    await expect(broken.get('x.example')).rejects.toThrow(/config\.json is not valid JSON/);
  });

  it('warns (without secrets) and goes on anonymously when a helper is missing', async () => {
    const events: TskitEvent[] = [];
    const credentials = await store({credsStore: 'does-not-exist'}, events);
    expect(await credentials.get('x.example')).toBeUndefined();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({type: 'log', level: 'warn'});
    expect((events[0] as {message: string}).message).toContain('docker-credential-does-not-exist');
  });
});
