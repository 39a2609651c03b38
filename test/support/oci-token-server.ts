// Test material: a Docker registry token server (the distribution token protocol). It checks
// Basic credentials (or an OAuth2 refresh token) and signs RS256 JWTs with a self-signed
// certificate made by openssl; the registry trusts that certificate as its rootcertbundle.
import {execFile} from 'node:child_process';
import {createPrivateKey, createSign, randomBytes, X509Certificate} from 'node:crypto';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {createServer, type IncomingMessage} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';

const run = promisify(execFile);

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** The `auth:` section for the registry config, indented by two spaces. */
  authYaml: string;
  /** Every token request seen: who asked for what. */
  requests: Array<{account?: string; scopes: string[]; grant?: string}>;
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  users: Record<string, string>;
  /** Refresh tokens accepted for the OAuth2 POST flow, mapped to the user they stand for. */
  refreshTokens?: Record<string, string>;
  /** Actions anonymous clients get (default none). */
  anonymousActions?: string[];
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tskit-token-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=tskit-test-token-issuer']);
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw;
  const service = 'tskit-test-registry';
  const issuer = 'tskit-test-issuer';
  const requests: TokenServer['requests'] = [];

  const sign = (subject: string, access: Array<{type: string; name: string; actions: string[]}>) => {
    const now = Math.floor(Date.now() / 1000);
    const header = {alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')]};
    const claims = {iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 30, iat: now, jti: randomBytes(8).toString('hex'), access};
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${b64url(signature)}`;
  };

  const grant = (user: string | undefined, scopes: string[]) =>
    scopes.flatMap((scope) => {
      const [type, name, actions] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1, scope.lastIndexOf(':')), scope.slice(scope.lastIndexOf(':') + 1)];
      const allowed = user ? actions.split(',') : actions.split(',').filter((a) => (options.anonymousActions ?? []).includes(a));
      return allowed.length ? [{type, name, actions: allowed}] : [];
    });

  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    let scopes: string[];
    let grantType: string | undefined;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await body(req));
      grantType = form.get('grant_type') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (grantType === 'refresh_token') user = options.refreshTokens?.[form.get('refresh_token') ?? ''];
      else if (grantType === 'password' && options.users[form.get('username') ?? ''] === form.get('password')) user = form.get('username') ?? undefined;
      if (!user) {
        requests.push({scopes, grant: grantType});
        res.writeHead(401, {'content-type': 'application/json'}).end(JSON.stringify({error: 'invalid_grant'}));
        return;
      }
    } else {
      scopes = url.searchParams.getAll('scope');
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const [name, ...rest] = decoded.split(':');
        if (options.users[name!] !== rest.join(':')) {
          requests.push({account: name, scopes});
          res.writeHead(401, {'content-type': 'application/json'}).end(JSON.stringify({errors: [{code: 'UNAUTHORIZED', message: 'bad credentials'}]}));
          return;
        }
        user = name;
      }
    }
    requests.push({...(user ? {account: user} : {}), scopes, ...(grantType ? {grant: grantType} : {})});
    const token = sign(user ?? '', grant(user, scopes));
    const answer = grantType ? {access_token: token, expires_in: 300} : {token, expires_in: 300};
    res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    realm,
    service,
    issuer,
    certPath,
    authYaml: ['  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${certPath}`].join('\n'),
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, {recursive: true, force: true});
    },
  };
}

/** An htpasswd file line (bcrypt) made by `htpasswd` from apache2-utils. */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  const {stdout} = await run('htpasswd', ['-Bbn', user, password]);
  return stdout.trim();
}
