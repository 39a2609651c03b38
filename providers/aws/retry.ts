// The one retry layer every AWS request goes through: the SDK's own retry middleware slot,
// filled with this policy instead of the SDK's standard one. No other code retries a request
// (retries stacked on retries multiply), so the budget here is the whole budget.
//
// Why not the SDK's standard strategy: its shared retry quota (a token bucket) stops retrying
// every request at once after a burst of failures, which is exactly what a long parallel
// upload over a flaky link meets; coldsnap learned the same. Here each request has its own
// budget of attempts, with exponential backoff and full jitter, longer for throttling, and a
// server's Retry-After hint is honoured.

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

export interface RetryPolicy {
  /** Attempts per request, the first included (AWS_MAX_ATTEMPTS, the SDK's own setting). */
  maxAttempts: number;
  /** First backoff ceiling; doubles each retry (full jitter: a random delay below it). */
  baseDelayMs: number;
  /** Throttling starts from this ceiling instead (a throttled service wants air). */
  throttleBaseDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
}

export const defaultRetryPolicy: RetryPolicy = {maxAttempts: 8, baseDelayMs: 250, throttleBaseDelayMs: 1000, maxDelayMs: 20_000};

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

/** Network errors that do not heal by waiting: a name that does not resolve is a wrong region or endpoint. */
function permanentNetworkError(error: unknown): boolean {
  const code = (error as {code?: string} | undefined)?.code;
  return code === 'ENOTFOUND' || code === 'ERR_INVALID_URL' || code === 'CERT_HAS_EXPIRED' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT';
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
    if (info.errorType === 'CLIENT_ERROR' || permanentNetworkError(info.error)) throw new Error('not retryable');
    if (attempt >= this.policy.maxAttempts) throw new Error('retry budget spent');
    const delay = retryDelay(this.policy, attempt, info);
    return new Token(attempt, delay);
  }

  recordSuccess(_token: RetryToken): void {}
}

/** Full jitter: uniform in [0, min(max, base * 2^(attempt-1))); at least a Retry-After hint. */
export function retryDelay(policy: RetryPolicy, attempt: number, info: Pick<RetryErrorInfo, 'errorType' | 'retryAfterHint'>): number {
  const base = info.errorType === 'THROTTLING' ? policy.throttleBaseDelayMs : policy.baseDelayMs;
  const ceiling = Math.min(policy.maxDelayMs, base * 2 ** (attempt - 1));
  const jittered = Math.floor((policy.random ?? Math.random)() * ceiling);
  const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
  return Math.min(policy.maxDelayMs, Math.max(jittered, hinted));
}
