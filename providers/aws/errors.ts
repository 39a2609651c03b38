// Turns what the AWS SDK throws into one line that says what went wrong and what to do, and
// makes sure no secret ever reaches a message: credentials from the environment and anything
// shaped like an access key, session token or request signature is masked.
import {TskitError} from '../../src/errors.ts';
import {redactSecrets} from '../../src/provider-kit/secrets.ts';

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: {httpStatusCode?: number; attempts?: number};
  hostname?: string;
}

export function errorCode(error: unknown): string {
  const e = error as SdkError | undefined;
  return e?.name && e.name !== 'Error' ? e.name : (e?.code ?? '');
}

/** The HTTP status of a service error, when there was an answer. */
export function httpStatus(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** Not-found answers, for idempotent deletes and look-ups. */
export function isNotFound(error: unknown): boolean {
  const code = errorCode(error);
  return /NotFound|NoSuch|\.Malformed$|DoesNotExist/.test(code) || (httpStatus(error) === 404 && code !== 'ENOTFOUND');
}

/** AWS's secret shapes, beside the ones every cloud shares (src/provider-kit/secrets.ts). */
const SECRET_PATTERNS: RegExp[] = [
  /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g, // access key ids
  /(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+/gi, // pre-signed URL parts
  /(Signature=)[0-9a-f]{64}/gi,
  /(aws_secret_access_key\s*=\s*)\S+/gi,
  /(aws_session_token\s*=\s*)\S+/gi,
];

const SECRET_ENV = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN', 'AWS_ACCESS_KEY_ID', 'AWS_BEARER_TOKEN_BEDROCK'];

/** `text` with every credential it could hold masked. */
export function redact(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return redactSecrets(text, {env, envNames: SECRET_ENV, patterns: SECRET_PATTERNS});
}

/** A one-line TskitError for a failed AWS call. */
export function awsError(error: unknown, operation: string): Error {
  if (error instanceof TskitError) return error;
  if ((error as SdkError | undefined)?.name === 'AbortError') return error as Error;
  const e = (error ?? {}) as SdkError;
  const code = errorCode(error);
  const message = redact((e.message ?? String(error)).split('\n')[0]!.trim());
  const profile = process.env.AWS_PROFILE;
  if (profile && (code === 'CredentialsProviderError' || /Could not load credentials|profile/i.test(message))) {
    return new TskitError(`AWS profile ${profile} was not found or has no credentials: check AWS_PROFILE against \`aws configure list-profiles\`, or sign in with \`aws sso login --profile ${profile}\``);
  }
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new TskitError('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, or sign in with `aws sso login`');
  }
  if (/Region is missing/i.test(message)) return new TskitError('no AWS region set: set AWS_REGION, or a region in your AWS profile (aws configure)');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TskitError(`AWS ${operation}: cannot resolve ${e.hostname ?? 'the endpoint'}: check the region (AWS_REGION) and AWS_ENDPOINT_URL`);
  }
  const attempts = e.$metadata?.attempts;
  const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'TimeoutError', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
    return new TskitError(`AWS ${operation} failed${tries}: ${message || code}: the endpoint is unreachable or not answering; check the network and AWS_ENDPOINT_URL, then run the command again`);
  }
  if (['AuthFailure', 'UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'UnrecognizedClientException'].includes(code)) {
    return new TskitError(`AWS refused ${operation} (${code}): ${message}: check your credentials and their IAM permissions`);
  }
  const status = httpStatus(error);
  const what = code && code !== 'Unknown' ? code : status ? `HTTP ${status}` : 'error';
  return new TskitError(`AWS ${operation} failed${tries} (${what}): ${message}`, {cause: error});
}

/** Wraps a promise of an AWS call: rejections become `awsError`s naming the operation. */
export function named<T>(operation: string, call: Promise<T>): Promise<T> {
  return call.catch((error: unknown) => {
    throw awsError(error, operation);
  });
}
