// HTTP for registries: undici dispatchers with connect/header/body timeouts, bounded
// retries with exponential backoff and jitter (connection errors, 429, 5xx), and redirects
// followed by hand so credentials never travel to another origin.
import type {Readable} from 'node:stream';
import {rootCertificates} from 'node:tls';
import {Agent, EnvHttpProxyAgent, request, type Dispatcher} from 'undici';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import {isLoopbackHost, redactUrl} from './endpoints.ts';

export interface Timeouts {
  /** TCP+TLS connection establishment. */
  connectMs: number;
  /** From request sent to response headers received. */
  headersMs: number;
  /** Longest silence between two body chunks. */
  bodyMs: number;
}

export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {connectMs: 15_000, headersMs: 30_000, bodyMs: 60_000};
/**
 * A server that accepted the request and said nothing for headersMs twice is not going to
 * answer a third time: headers timeouts get this many attempts, not the policy's.
 */
const HEADERS_TIMEOUT_ATTEMPTS = 2;
export const DEFAULT_RETRY: RetryPolicy = {attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000};

export interface TransportOptions {
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  /** Extra CA certificates (PEM), added to Node's bundled roots (LinuxKit's --cert-file). */
  caCertificates?: string[];
  userAgent?: string;
  emit?: Emit;
}

/** A request body that can be produced again for a retry. */
export type BodySource = Buffer | (() => Readable);

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: BodySource;
  /** Skip certificate checks (hosts named with --insecure-registry). */
  insecureTls?: boolean;
  /** Retry on connection errors, 429 and 5xx. Defaults to true for GET, HEAD and PUT with a Buffer body. */
  retry?: boolean;
  /** Follow redirects (GET and HEAD only). Defaults to true. */
  followRedirects?: boolean;
  /** Aborts the request, its retries and its body; the call then throws the signal's reason. */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Readable & {dump(): Promise<void>; text(): Promise<string>};
  /** The URL that answered, after redirects. */
  url: string;
}

/** Network failure before a response arrived (after retries). */
export class ConnectionError extends TskitError {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, cause: unknown) {
    super(message, {cause});
    this.name = 'ConnectionError';
    this.code = code;
  }
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** The most specific error code in an undici/Node error chain (the innermost one). */
export function errorCode(error: unknown): string | undefined {
  let found: string | undefined;
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const code = (current as {code?: unknown}).code;
    if (typeof code === 'string') found = code;
    current = (current as {cause?: unknown}).cause;
  }
  return found;
}

export function isRetryableError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((resolve) => setTimeout(resolve, ms));
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, {once: true});
  });
}

export class HttpTransport {
  readonly timeouts: Timeouts;
  readonly retryPolicy: RetryPolicy;
  private readonly emit: Emit;
  private readonly userAgent: string;
  private readonly ca: string[] | undefined;
  private readonly dispatchers = new Map<string, Dispatcher>();

  constructor(options: TransportOptions = {}) {
    this.timeouts = {...DEFAULT_TIMEOUTS, ...options.timeouts};
    this.retryPolicy = {...DEFAULT_RETRY, ...options.retry};
    this.emit = options.emit ?? ignoreEvents;
    this.userAgent = options.userAgent ?? 'tskit';
    this.ca = options.caCertificates?.length ? [...rootCertificates, ...options.caCertificates] : undefined;
  }

  private dispatcher(url: URL, insecureTls: boolean): Dispatcher {
    const direct = isLoopbackHost(url.host) || !hasProxyEnv();
    const key = `${direct ? 'direct' : 'proxy'}:${insecureTls ? 'insecure' : 'verify'}`;
    let dispatcher = this.dispatchers.get(key);
    if (!dispatcher) {
      const connect = {
        timeout: this.timeouts.connectMs,
        ...(insecureTls ? {rejectUnauthorized: false} : {}),
        ...(this.ca ? {ca: this.ca} : {}),
      };
      const options = {connect, headersTimeout: this.timeouts.headersMs, bodyTimeout: this.timeouts.bodyMs};
      dispatcher = direct ? new Agent(options) : new EnvHttpProxyAgent(options);
      this.dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  /**
   * Sends a request, retrying per the policy, and following redirects for GET/HEAD. The
   * caller must consume or dump the body of the response it gets.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const retry = req.retry ?? (req.method === 'GET' || req.method === 'HEAD' || (req.method === 'PUT' && Buffer.isBuffer(req.body)));
    const attempts = retry ? Math.max(1, this.retryPolicy.attempts) : 1;
    for (let attempt = 1; ; attempt++) {
      let response: HttpResponse;
      try {
        response = await this.sendFollowingRedirects(req);
      } catch (error) {
        if (req.signal?.aborted) throw req.signal.reason;
        const allowed = errorCode(error) === 'UND_ERR_HEADERS_TIMEOUT' ? Math.min(attempts, HEADERS_TIMEOUT_ATTEMPTS) : attempts;
        if (attempt < allowed && isRetryableError(error)) {
          await this.backoff(req, attempt, allowed, errorCode(error) ?? 'connection error');
          continue;
        }
        throw new ConnectionError(
          `${req.method} ${redactUrl(req.url)} failed: ${describeError(error)}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}`,
          errorCode(error),
          error,
        );
      }
      if (attempt < attempts && isRetryableStatus(response.status)) {
        await response.body.dump().catch(() => {});
        await this.backoff(req, attempt, attempts, `HTTP ${response.status}`, retryAfterMs(response.headers['retry-after']));
        continue;
      }
      return response;
    }
  }

  private async backoff(req: HttpRequest, attempt: number, attempts: number, why: string, hintMs?: number): Promise<void> {
    const exponential = Math.min(this.retryPolicy.maxDelayMs, this.retryPolicy.baseDelayMs * 2 ** (attempt - 1));
    // Full jitter in [50%, 100%] of the step keeps concurrent clients from retrying in lockstep.
    let delay = exponential * (0.5 + Math.random() * 0.5);
    if (hintMs !== undefined) delay = Math.min(Math.max(delay, hintMs), 30_000);
    this.emit({
      type: 'log',
      level: 'warn',
      message: `${req.method} ${redactUrl(req.url)}: ${why}; retrying in ${(delay / 1000).toFixed(1)}s (attempt ${attempt + 1} of ${attempts})`,
    });
    await abortableSleep(delay, req.signal);
  }

  private async sendFollowingRedirects(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let headers = {'user-agent': this.userAgent, ...req.headers};
    const follow = (req.followRedirects ?? true) && (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const response = await this.sendOnce({...req, url, headers});
      if (!follow || ![301, 302, 303, 307, 308].includes(response.status)) return response;
      const location = response.headers.location;
      await response.body.dump().catch(() => {});
      if (!location) throw new TskitError(`${req.method} ${redactUrl(url)} answered ${response.status} without a Location`);
      if (hop >= 5) throw new TskitError(`${req.method} ${redactUrl(req.url)}: too many redirects`);
      const next = new URL(location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new TskitError(`redirect to unsupported URL ${redactUrl(next.href)}`);
      if (next.protocol === 'http:' && new URL(url).protocol === 'https:' && !isLoopbackHost(next.host)) {
        throw new TskitError(`${redactUrl(url)} redirected from https to plain http (${redactUrl(next.href)}); refusing`);
      }
      if (next.origin !== new URL(url).origin) {
        // Blob storage behind a redirect gets its own credentials in the URL, never ours.
        const {authorization: _dropped, ...rest} = headers as Record<string, string>;
        headers = rest as typeof headers;
      }
      url = next.href;
    }
  }

  private async sendOnce(req: HttpRequest & {headers: Record<string, string>}): Promise<HttpResponse> {
    const url = new URL(req.url);
    const body = typeof req.body === 'function' ? req.body() : req.body;
    const result = await request(url, {
      method: req.method,
      headers: req.headers,
      body: body ?? null,
      dispatcher: this.dispatcher(url, req.insecureTls ?? false),
      ...(req.signal ? {signal: req.signal} : {}),
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(result.headers)) {
      if (value === undefined) continue;
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    return {status: result.statusCode, headers, body: result.body as unknown as HttpResponse['body'], url: req.url};
  }

  async close(): Promise<void> {
    const dispatchers = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(dispatchers.map((d) => d.close().catch(() => {})));
  }
}

function hasProxyEnv(): boolean {
  const env = process.env;
  return Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export function describeError(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined;
  const text = inner && inner !== message ? `${message}: ${inner}` : message;
  return code && !text.includes(code) ? `${text} (${code})` : text;
}
