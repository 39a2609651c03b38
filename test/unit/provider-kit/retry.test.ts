// The provider kit's retry: full jitter under an exponential ceiling, throttling starting
// higher, Retry-After honoured, a per-request budget, and no retry of what cannot heal.
import {describe, expect, it} from 'vitest';
import {defaultRetryPolicy, httpRetryKind, networkRetryKind, parseRetryAfter, retryDelay, withRetry} from '../../../src/provider-kit/retry.ts';

describe('retryDelay', () => {
  it('full jitter below an exponential ceiling; throttling starts higher; all capped', () => {
    const policy = {...defaultRetryPolicy, random: () => 0.999};
    expect(retryDelay(policy, 1, {kind: 'transient'})).toBeLessThan(250);
    expect(retryDelay(policy, 3, {kind: 'transient'})).toBeGreaterThan(900);
    expect(retryDelay(policy, 3, {kind: 'transient'})).toBeLessThan(1000);
    expect(retryDelay(policy, 1, {kind: 'throttling'})).toBeGreaterThan(900);
    expect(retryDelay(policy, 30, {kind: 'throttling'})).toBeLessThanOrEqual(policy.maxDelayMs);
    expect(retryDelay({...policy, random: () => 0}, 2, {kind: 'transient'})).toBe(0);
  });

  it('a Retry-After hint is honoured, up to the policy maximum', () => {
    const policy = {...defaultRetryPolicy, random: () => 0};
    expect(retryDelay(policy, 1, {kind: 'throttling', retryAfterMs: 5000})).toBe(5000);
    expect(retryDelay(policy, 1, {kind: 'throttling', retryAfterMs: 10 * 60_000})).toBe(policy.maxDelayMs);
  });
});

describe('Retry-After and what is retryable', () => {
  it('reads delta seconds and HTTP dates', () => {
    const now = Date.parse('2026-12-05T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Sat, 05 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('HTTP 429 is throttling, 408 and 5xx gateway answers transient, 4xx not retried', () => {
    expect([429, 408, 500, 502, 503, 504, 400, 403, 404, 409].map(httpRetryKind)).toEqual(['throttling', 'transient', 'transient', 'transient', 'transient', 'transient', undefined, undefined, undefined, undefined]);
    expect(networkRetryKind(Object.assign(new Error('x'), {code: 'ECONNRESET'}))).toBe('transient');
    expect(networkRetryKind(new Error('fetch failed', {cause: Object.assign(new Error('y'), {code: 'UND_ERR_SOCKET'})}))).toBe('transient');
    expect(networkRetryKind(new Error('no'))).toBeUndefined();
  });
});

describe('withRetry', () => {
  const fast = {...defaultRetryPolicy, baseDelayMs: 1, throttleBaseDelayMs: 1, maxDelayMs: 5};

  it('retries within the budget and returns the first success', async () => {
    const seen: number[] = [];
    const result = await withRetry(async (attempt) => {
      seen.push(attempt);
      if (attempt < 3) throw Object.assign(new Error('reset'), {code: 'ECONNRESET'});
      return 'ok';
    }, {policy: fast, classify: (e) => (networkRetryKind(e) ? {kind: 'transient'} : undefined)});
    expect([result, seen]).toEqual(['ok', [1, 2, 3]]);
  });

  it('gives up at the budget, at once on what is not retryable or cannot heal, and when aborted', async () => {
    let calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new Error('always');
    }, {policy: {...fast, maxAttempts: 4}, classify: () => ({kind: 'transient'})})).rejects.toThrow('always');
    expect(calls).toBe(4);
    calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), {code: 'ENOTFOUND'});
    }, {policy: fast, classify: () => ({kind: 'transient'})})).rejects.toThrow(/ENOTFOUND/);
    expect(calls).toBe(1);
    const stop = new AbortController();
    const slow = {...fast, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.99};
    const started = Date.now();
    const run = withRetry(async () => {
      throw new Error('x');
    }, {policy: slow, classify: () => ({kind: 'transient'}), signal: stop.signal});
    setTimeout(() => stop.abort(new Error('stopped')), 20);
    await expect(run).rejects.toThrow('stopped');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
