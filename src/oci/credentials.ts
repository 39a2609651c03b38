// Registry credentials from Docker's config.json, read the way the docker CLI reads them:
// `credHelpers` for the host, else `credsStore`, else `auths` (base64 `auth` or
// `identitytoken`). Helpers run as `docker-credential-<name> get`. Secrets never appear in
// messages or events.
import {spawn} from 'node:child_process';
import {readFile} from 'node:fs/promises';
import {homedir} from 'node:os';
import {join} from 'node:path';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (Docker's identity token), exchanged at the token endpoint. */
  identityToken?: string;
  /** A bearer token to send as is (some helpers return registry tokens). */
  registryToken?: string;
}

export interface CredentialStore {
  /** Credentials for a registry host (host[:port]), or undefined for anonymous access. */
  get(host: string): Promise<Credentials | undefined>;
}

/** docker.io's credentials live under this key, as the docker CLI writes them. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

interface DockerConfigFile {
  auths?: Record<string, {auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string}>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
}

/** The docker CLI's ConvertToHostname: drop the scheme and any path. */
function toHostname(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0] ?? key;
}

export interface DockerConfigOptions {
  env?: NodeJS.ProcessEnv;
  emit?: Emit;
  /** Time allowed for a credential helper, in ms. */
  helperTimeoutMs?: number;
}

export class DockerConfigCredentials implements CredentialStore {
  private readonly env: NodeJS.ProcessEnv;
  private readonly emit: Emit;
  private readonly helperTimeoutMs: number;
  private config: Promise<DockerConfigFile | undefined> | undefined;
  private readonly cache = new Map<string, Promise<Credentials | undefined>>();

  constructor(options: DockerConfigOptions = {}) {
    this.env = options.env ?? process.env;
    this.emit = options.emit ?? ignoreEvents;
    this.helperTimeoutMs = options.helperTimeoutMs ?? 30_000;
  }

  get path(): string {
    return dockerConfigPath(this.env);
  }

  get(host: string): Promise<Credentials | undefined> {
    const key = host.toLowerCase();
    let result = this.cache.get(key);
    if (!result) {
      result = this.lookup(key);
      this.cache.set(key, result);
    }
    return result;
  }

  private loadConfig(): Promise<DockerConfigFile | undefined> {
    this.config ??= (async () => {
      let text: string;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new TskitError(`cannot read Docker credentials file ${this.path}: ${(error as Error).message}`);
      }
      try {
        return JSON.parse(text) as DockerConfigFile;
      } catch (error) {
        throw new TskitError(`Docker credentials file ${this.path} is not valid JSON: ${(error as Error).message}`);
      }
    })();
    return this.config;
  }

  private async lookup(host: string): Promise<Credentials | undefined> {
    const config = await this.loadConfig();
    if (!config) return undefined;
    const isHub = DOCKER_HUB_HOSTS.has(host);
    const serverKeys = isHub ? [DOCKER_HUB_SERVER, 'index.docker.io', 'docker.io', 'registry-1.docker.io'] : [host];

    const helper = serverKeys.map((k) => config.credHelpers?.[k]).find((h) => h) ?? config.credsStore;
    if (helper) {
      const fromHelper = await this.runHelper(helper, isHub ? DOCKER_HUB_SERVER : host);
      if (fromHelper) return fromHelper;
    }
    const auths = config.auths ?? {};
    let entry = serverKeys.map((k) => auths[k]).find((e) => e);
    if (!entry) {
      const wanted = isHub ? 'index.docker.io' : host;
      const match = Object.keys(auths).find((k) => toHostname(k).toLowerCase() === wanted);
      entry = match !== undefined ? auths[match] : undefined;
    }
    if (!entry) return undefined;
    const credentials: Credentials = {};
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new TskitError(`the "auth" entry for ${host} in ${this.path} is not base64 of user:password`);
      credentials.username = decoded.slice(0, colon);
      credentials.password = decoded.slice(colon + 1);
    } else if (entry.username !== undefined && entry.password !== undefined) {
      credentials.username = entry.username;
      credentials.password = entry.password;
    }
    if (entry.identitytoken) credentials.identityToken = entry.identitytoken;
    if (entry.registrytoken) credentials.registryToken = entry.registrytoken;
    return Object.keys(credentials).length ? credentials : undefined;
  }

  private async runHelper(helper: string, serverUrl: string): Promise<Credentials | undefined> {
    const program = `docker-credential-${helper}`;
    const result = await new Promise<{code: number | null; stdout: string; error?: Error}>((resolve) => {
      const child = spawn(program, ['get'], {stdio: ['pipe', 'pipe', 'pipe'], env: this.env});
      let stdout = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), this.helperTimeoutMs);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      child.stderr.resume();
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve({code: null, stdout: '', error});
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({code, stdout});
      });
      child.stdin.on('error', () => {});
      child.stdin.end(serverUrl);
    });
    if (result.error) {
      this.emit({type: 'log', level: 'warn', message: `credential helper ${program} (named in ${this.path}) could not run: ${result.error.message}; continuing without credentials for ${serverUrl}`});
      return undefined;
    }
    if (result.code !== 0) {
      // "credentials not found in native keychain" is the protocol's way of saying none.
      if (!/credentials not found/i.test(result.stdout)) {
        this.emit({type: 'log', level: 'warn', message: `credential helper ${program} failed (exit ${result.code}) for ${serverUrl}; continuing without credentials`});
      }
      return undefined;
    }
    let parsed: {Username?: string; Secret?: string};
    try {
      parsed = JSON.parse(result.stdout) as {Username?: string; Secret?: string};
    } catch {
      throw new TskitError(`credential helper ${program} printed something that is not JSON for ${serverUrl}`);
    }
    if (!parsed.Secret) return undefined;
    if (parsed.Username === '<token>') return {identityToken: parsed.Secret};
    return {username: parsed.Username ?? '', password: parsed.Secret};
  }
}

/** A fixed set of credentials by host, for callers that have their own. */
export class StaticCredentials implements CredentialStore {
  private readonly byHost: Map<string, Credentials>;
  constructor(byHost: Record<string, Credentials>) {
    this.byHost = new Map(Object.entries(byHost).map(([host, credentials]) => [host.toLowerCase(), credentials]));
  }
  async get(host: string): Promise<Credentials | undefined> {
    return this.byHost.get(host.toLowerCase());
  }
}
