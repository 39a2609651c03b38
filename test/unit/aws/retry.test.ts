// The retry policy the AWS SDK clients use (the provider kit's, in the SDK's slot): budgets,
// backoff with jitter, throttling, hints.
import {describe, expect, it} from 'vitest';
import {BudgetRetryStrategy, retryPolicyFromEnv, defaultRetryPolicy} from '../../../providers/aws/retry.ts';

describe('retry policy', () => {
  it('AWS_MAX_ATTEMPTS sets the budget; nonsense keeps the default', () => {
    expect(retryPolicyFromEnv({AWS_MAX_ATTEMPTS: '3'}).maxAttempts).toBe(3);
    expect(retryPolicyFromEnv({AWS_MAX_ATTEMPTS: 'x'}).maxAttempts).toBe(defaultRetryPolicy.maxAttempts);
    expect(retryPolicyFromEnv({}).maxAttempts).toBe(defaultRetryPolicy.maxAttempts);
  });

  it('a Retry-After hint reaches the delay the SDK waits', async () => {
    const strategy = new BudgetRetryStrategy({...defaultRetryPolicy, random: () => 0});
    const token = await strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), {errorType: 'THROTTLING', retryAfterHint: new Date(Date.now() + 5000)});
    expect(token.getRetryDelay()).toBeGreaterThan(4000);
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
