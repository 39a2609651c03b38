// The retry policy the SDK clients use: budgets, backoff with jitter, throttling, hints.
import {describe, expect, it} from 'vitest';
import {BudgetRetryStrategy, retryDelay, retryPolicyFromEnv, defaultRetryPolicy} from '../../../providers/aws/retry.ts';

describe('retry policy', () => {
  it('AWS_MAX_ATTEMPTS sets the budget; nonsense keeps the default', () => {
    expect(retryPolicyFromEnv({AWS_MAX_ATTEMPTS: '3'}).maxAttempts).toBe(3);
    expect(retryPolicyFromEnv({AWS_MAX_ATTEMPTS: 'x'}).maxAttempts).toBe(defaultRetryPolicy.maxAttempts);
    expect(retryPolicyFromEnv({}).maxAttempts).toBe(defaultRetryPolicy.maxAttempts);
  });

  it('full jitter below an exponential ceiling; throttling starts higher; all capped', () => {
    const policy = {...defaultRetryPolicy, random: () => 0.999};
    expect(retryDelay(policy, 1, {errorType: 'TRANSIENT'})).toBeLessThan(250);
    expect(retryDelay(policy, 3, {errorType: 'TRANSIENT'})).toBeGreaterThan(900);
    expect(retryDelay(policy, 3, {errorType: 'TRANSIENT'})).toBeLessThan(1000);
    expect(retryDelay(policy, 1, {errorType: 'THROTTLING'})).toBeGreaterThan(900);
    expect(retryDelay(policy, 30, {errorType: 'THROTTLING'})).toBeLessThanOrEqual(policy.maxDelayMs);
    expect(retryDelay({...policy, random: () => 0}, 2, {errorType: 'TRANSIENT'})).toBe(0);
  });

  it('a Retry-After hint is honoured', () => {
    const delay = retryDelay({...defaultRetryPolicy, random: () => 0}, 1, {errorType: 'THROTTLING', retryAfterHint: new Date(Date.now() + 5000)});
    expect(delay).toBeGreaterThan(4000);
  });

  it('retries transient and server errors within the budget, never client errors or unknown hosts', async () => {
    const strategy = new BudgetRetryStrategy({...defaultRetryPolicy, maxAttempts: 3});
    let token = await strategy.acquireInitialRetryToken('');
    token = await strategy.refreshRetryTokenForRetry(token, {errorType: 'TRANSIENT'});
    expect(token.getRetryCount()).toBe(1);
    token = await strategy.refreshRetryTokenForRetry(token, {errorType: 'SERVER_ERROR'});
    expect(token.getRetryCount()).toBe(2);
    await expect(strategy.refreshRetryTokenForRetry(token, {errorType: 'TRANSIENT'})).rejects.toThrow(/budget/);
    const fresh = await strategy.acquireInitialRetryToken('');
    await expect(strategy.refreshRetryTokenForRetry(fresh, {errorType: 'CLIENT_ERROR'})).rejects.toThrow();
    await expect(strategy.refreshRetryTokenForRetry(fresh, {errorType: 'TRANSIENT', error: Object.assign(new Error('getaddrinfo ENOTFOUND'), {code: 'ENOTFOUND'})})).rejects.toThrow();
  });
});
