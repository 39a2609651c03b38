// The one retry layer every AWS request goes through: the SDK's own retry middleware slot,
// filled with the provider kit's policy (src/provider-kit/retry.ts: a budget per request,
// exponential backoff with full jitter, longer for throttling, Retry-After honoured) instead
// of the SDK's standard strategy, whose shared retry quota stops retrying every request at
// once after a burst of failures, which is what a long parallel upload over a flaky link
// meets. No other code retries a request (retries stacked on retries multiply).
import {defaultRetryPolicy, isPermanentNetworkError, retryDelay, type RetryPolicy} from '../../src/provider-kit/retry.ts';

export {defaultRetryPolicy, type RetryPolicy} from '../../src/provider-kit/retry.ts';

/** What the SDK's retry middleware hands a strategy (RetryStrategyV2 in @smithy/types). */
export interface RetryErrorInfo {
  errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';
  error?: unknown;
  retryAfterHint?: Date;
}

export interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

/** The policy with AWS_MAX_ATTEMPTS applied (the SDK's standard variable; a profile's max_attempts is not read). */
export function retryPolicyFromEnv(env: NodeJS.ProcessEnv = process.env, base: RetryPolicy = defaultRetryPolicy): RetryPolicy {
  const attempts = Number.parseInt(env.AWS_MAX_ATTEMPTS ?? '', 10);
  return Number.isFinite(attempts) && attempts >= 1 ? {...base, maxAttempts: attempts} : base;
}

class Token implements RetryToken {
  readonly count: number;
  readonly delay: number;
  constructor(count: number, delay: number) {
    this.count = count;
    this.delay = delay;
  }
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

/** A RetryStrategyV2 for the SDK clients' `retryStrategy` setting. */
export class BudgetRetryStrategy {
  readonly mode = 'tskit-budget';
  private readonly policy: RetryPolicy;

  constructor(policy: RetryPolicy) {
    this.policy = policy;
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return new Token(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const attempt = token.getRetryCount() + 1;
    if (info.errorType === 'CLIENT_ERROR' || isPermanentNetworkError(info.error)) throw new Error('not retryable');
    if (attempt >= this.policy.maxAttempts) throw new Error('retry budget spent');
    const delay = retryDelay(this.policy, attempt, {
      kind: info.errorType === 'THROTTLING' ? 'throttling' : 'transient',
      ...(info.retryAfterHint ? {retryAfterMs: info.retryAfterHint.getTime() - Date.now()} : {}),
    });
    return new Token(attempt, delay);
  }

  recordSuccess(_token: RetryToken): void {}
}
