// Retrying a cloud call: exponential backoff with full jitter, a longer start for
// throttling, a server's Retry-After honoured, and a per-request budget of attempts (no
// shared quota that stops every request at once after a burst of failures, which is what a
// long parallel upload over a flaky link meets; coldsnap learned the same). A provider has
// exactly one retry layer: either its SDK's slot filled with this policy (AWS), or
// `withRetry` around its own HTTP calls. Retries stacked on retries multiply.
import {sleep} from '../run/signals.ts';

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** First backoff ceiling; doubles each retry (full jitter: a random delay below it). */
  baseDelayMs: number;
  /** Throttling starts from this ceiling instead (a throttled service wants air). */
  throttleBaseDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
}

export const defaultRetryPolicy: RetryPolicy = {maxAttempts: 8, baseDelayMs: 250, throttleBaseDelayMs: 1000, maxDelayMs: 20_000};

/** Why a failed attempt may be tried again. */
export type RetryKind = 'transient' | 'throttling';

export interface Retryable {
  kind: RetryKind;
  /** The server's hint (Retry-After, x-ms-retry-after-ms, ...), in milliseconds from now. */
  retryAfterMs?: number;
}

/** Full jitter: uniform in [0, min(max, base * 2^(attempt-1))); at least a Retry-After hint, never past maxDelayMs. */
export function retryDelay(policy: RetryPolicy, attempt: number, retry: Retryable): number {
  const base = retry.kind === 'throttling' ? policy.throttleBaseDelayMs : policy.baseDelayMs;
  const ceiling = Math.min(policy.maxDelayMs, base * 2 ** (attempt - 1));
  const jittered = Math.floor((policy.random ?? Math.random)() * ceiling);
  return Math.min(policy.maxDelayMs, Math.max(jittered, retry.retryAfterMs ?? 0));
}

/** An HTTP Retry-After value (delta seconds or an HTTP date) in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** HTTP statuses worth another attempt: 429 is throttling; 408 and the 5xx a proxy or an overloaded service gives are transient. */
export function httpRetryKind(status: number): RetryKind | undefined {
  if (status === 429) return 'throttling';
  if (status === 408 || status === 500 || status === 502 || status === 503 || status === 504) return 'transient';
  return undefined;
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Network errors that do not heal by waiting: a name that does not resolve is a wrong region or endpoint, a bad certificate stays bad. */
export function isPermanentNetworkError(error: unknown): boolean {
  const code = (error as {code?: string} | undefined)?.code;
  return code === 'ENOTFOUND' || code === 'ERR_INVALID_URL' || code === 'CERT_HAS_EXPIRED' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT';
}

/** A network failure (reset, refused, timed out), as Node and undici report them, is transient; anything else is not known to be. */
export function networkRetryKind(error: unknown): RetryKind | undefined {
  let e = error as {code?: string; cause?: unknown; name?: string} | undefined;
  for (let depth = 0; e && depth < 4; depth++, e = e.cause as typeof e) {
    if (e.code && TRANSIENT_CODES.has(e.code)) return 'transient';
    if (e.name === 'TimeoutError') return 'transient';
  }
  return undefined;
}

export interface WithRetryOptions {
  policy?: RetryPolicy;
  /** Whether a failure may be retried, and how; undefined: give up at once (the error is thrown as is). */
  classify(error: unknown): Retryable | undefined;
  signal?: AbortSignal;
  /** Told before each wait (for a debug line or a counter). */
  onRetry?(info: {attempt: number; delayMs: number; error: unknown}): void;
}

/**
 * Runs `call` until it succeeds, the failure is not retryable, or the budget is spent (then
 * the last error is thrown). `call` gets the attempt number, from 1. Aborting `signal`
 * stops the wait at once and throws its reason.
 */
export async function withRetry<T>(call: (attempt: number) => Promise<T>, options: WithRetryOptions): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await call(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const retry = isPermanentNetworkError(error) ? undefined : options.classify(error);
      if (!retry || attempt >= policy.maxAttempts) throw error;
      const delayMs = retryDelay(policy, attempt, retry);
      options.onRetry?.({attempt, delayMs, error});
      await sleep(delayMs, options.signal);
    }
  }
}
