// Registry authentication: Basic, or Bearer tokens from the realm a 401's
// WWW-Authenticate challenge names (the distribution token protocol, with Docker's OAuth2
// refresh-token variant for identity tokens). Tokens are reused per host and scope set until
// they expire. Neither credentials nor tokens ever appear in messages.
import {TskitError} from '../errors.ts';
import type {CredentialStore, Credentials} from './credentials.ts';
import {describeEndpoint, redactUrl, type Endpoint, type EndpointResolver} from './endpoints.ts';
import {describeError, type HttpTransport} from './transport.ts';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (RFC 7235), which may hold several challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skip = () => {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  skip();
  while (i < header.length) {
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = {scheme: scheme.toLowerCase(), params: {}};
    challenges.push(challenge);
    for (;;) {
      skip();
      const save = i;
      const key = token();
      while (i < header.length && header[i] === ' ') i++;
      if (!key || header[i] !== '=') {
        i = save; // the next challenge's scheme
        break;
      }
      i++;
      while (i < header.length && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < header.length && header[i] !== ',') i++;
        value = header.slice(start, i).trim();
      }
      challenge.params[key.toLowerCase()] = value;
    }
  }
  return challenges;
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  credentials: CredentialStore;
  transport: HttpTransport;
  endpoints: EndpointResolver;
  /** Where the credentials come from, for messages (e.g. the config.json path). */
  credentialSource?: string;
}

export class Authenticator {
  private readonly options: AuthenticatorOptions;
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, Promise<CachedToken | undefined>>();

  constructor(options: AuthenticatorOptions) {
    this.options = options;
  }

  /** Remembers a challenge seen outside of a request (e.g. the https probe's 401). */
  learn(endpoint: Endpoint, header: string | undefined): void {
    const challenge = pickChallenge(header);
    if (challenge) this.challenges.set(endpoint.host, challenge);
  }

  /** The Authorization header for a request, from what earlier challenges taught us; undefined before any. */
  async authorization(endpoint: Endpoint, scopes: string[]): Promise<string | undefined> {
    const challenge = this.challenges.get(endpoint.host);
    if (!challenge) return undefined;
    const cached = await this.token(endpoint, challenge, scopes, false);
    return cached?.header;
  }

  /**
   * Handles a 401: learns its challenge and returns the header to retry with, or undefined
   * when there is nothing better to send. Throws when the token server refuses.
   */
  async respond(endpoint: Endpoint, header: string | undefined, scopes: string[], sent: string | undefined): Promise<string | undefined> {
    const challenge = pickChallenge(header);
    if (!challenge) return undefined;
    this.challenges.set(endpoint.host, challenge);
    const fresh = await this.token(endpoint, challenge, scopes, sent !== undefined, mergeScopes(scopes, challenge.params.scope));
    if (!fresh || fresh.header === sent) return undefined;
    return fresh.header;
  }

  /** A token for `scopes` (the cache key); `fetchScopes` adds what the registry's challenge asked for. */
  private token(endpoint: Endpoint, challenge: Challenge, scopes: string[], forceNew: boolean, fetchScopes = scopes): Promise<CachedToken | undefined> {
    const key = `${endpoint.host} ${challenge.scheme} ${[...scopes].sort().join(' ')}`;
    const existing = this.tokens.get(key);
    if (existing && !forceNew) {
      return existing.then((token) => {
        if (token && token.expiresAt > Date.now()) return token;
        this.tokens.delete(key);
        return this.token(endpoint, challenge, scopes, true, fetchScopes);
      });
    }
    const fetching = this.fetchToken(endpoint, challenge, fetchScopes);
    this.tokens.set(key, fetching);
    fetching.catch(() => this.tokens.delete(key));
    return fetching;
  }

  private async fetchToken(endpoint: Endpoint, challenge: Challenge, scopes: string[]): Promise<CachedToken | undefined> {
    const credentials = await this.options.credentials.get(endpoint.host);
    if (challenge.scheme === 'basic') {
      if (credentials?.username === undefined || credentials.password === undefined) return undefined;
      return {header: basicHeader(credentials), expiresAt: Number.POSITIVE_INFINITY};
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credentials?.registryToken) return {header: `Bearer ${credentials.registryToken}`, expiresAt: Number.POSITIVE_INFINITY};
    const realm = challenge.params.realm;
    if (!realm) throw new TskitError(`${describeEndpoint(endpoint)} asked for a bearer token without naming a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new TskitError(`${describeEndpoint(endpoint)} named an invalid token realm ${JSON.stringify(redactUrl(realm))}`);
    }
    if (realmUrl.protocol !== 'https:' && !(realmUrl.protocol === 'http:' && this.options.endpoints.httpAllowed(realmUrl.host))) {
      throw new TskitError(
        `${describeEndpoint(endpoint)} sends clients to the token server ${redactUrl(realm)} over plain http; ` +
          `tskit only allows that for loopback hosts or hosts named with --insecure-registry`,
      );
    }
    const service = challenge.params.service;
    const insecureTls = this.options.endpoints.isNamedInsecure(realmUrl.host);
    let response;
    try {
      if (credentials?.identityToken) {
        const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: 'tskit'});
        if (service) form.set('service', service);
        if (scopes.length) form.set('scope', scopes.join(' '));
        response = await this.options.transport.send({
          method: 'POST',
          url: realmUrl.href,
          headers: {'content-type': 'application/x-www-form-urlencoded'},
          body: Buffer.from(form.toString()),
          insecureTls,
          retry: true,
        });
      } else {
        const url = new URL(realmUrl.href);
        if (service) url.searchParams.set('service', service);
        for (const scope of scopes) url.searchParams.append('scope', scope);
        const headers: Record<string, string> = {};
        if (credentials?.username !== undefined && credentials.password !== undefined) {
          headers.authorization = basicHeader(credentials);
          url.searchParams.set('account', credentials.username);
        }
        response = await this.options.transport.send({method: 'GET', url: url.href, headers, insecureTls});
      }
    } catch (error) {
      throw new TskitError(`cannot get a token for ${describeEndpoint(endpoint)} from ${redactUrl(realm)}: ${describeError(error)}`, {cause: error});
    }
    const text = await response.body.text();
    if (response.status === 401 || response.status === 403) {
      const who = credentials?.username !== undefined ? `the credentials for user ${JSON.stringify(credentials.username)}` : credentials?.identityToken ? 'the identity token' : 'anonymous access';
      throw new TskitError(
        `the token server ${redactUrl(realm)} for ${describeEndpoint(endpoint)} refused ${who} (HTTP ${response.status})` +
          (this.options.credentialSource ? `; credentials come from ${this.options.credentialSource}` : ''),
      );
    }
    if (response.status !== 200) {
      throw new TskitError(`the token server ${redactUrl(realm)} for ${describeEndpoint(endpoint)} answered HTTP ${response.status}`);
    }
    let body: {token?: string; access_token?: string; expires_in?: number; issued_at?: string};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new TskitError(`the token server ${redactUrl(realm)} for ${describeEndpoint(endpoint)} answered something that is not JSON`);
    }
    const token = body.token || body.access_token;
    if (!token) throw new TskitError(`the token server ${redactUrl(realm)} for ${describeEndpoint(endpoint)} answered without a token`);
    // The spec's default lifetime is 60 s; renew a little early.
    const lifetimeMs = Math.max(10, typeof body.expires_in === 'number' ? body.expires_in : 60) * 1000;
    return {header: `Bearer ${token}`, expiresAt: Date.now() + lifetimeMs - Math.min(10_000, lifetimeMs / 4)};
  }
}

function basicHeader(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username ?? ''}:${credentials.password ?? ''}`).toString('base64')}`;
}

function pickChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const challenges = parseChallenges(header);
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function mergeScopes(ours: string[], theirs: string | undefined): string[] {
  const all = new Set(ours);
  for (const scope of (theirs ?? '').split(' ')) if (scope) all.add(scope);
  return [...all];
}
