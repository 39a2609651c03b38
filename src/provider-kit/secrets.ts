// Nothing secret ever reaches a message, an event or a journal: what a cloud SDK throws is
// passed through redactSecrets before it becomes a TskitError. The patterns below are the
// shapes every cloud shares (bearer tokens, signed URLs, key material); a provider adds its
// own (AWS access key ids) and the environment variables that hold its credentials.

/** Shapes of secrets in any cloud's error text. Groups: an optional prefix that is kept. */
export const COMMON_SECRET_PATTERNS: readonly RegExp[] = [
  /(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, // OAuth / Entra ID bearer tokens
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, // a JWT anywhere
  /([?&](?:sig|signature|X-Goog-Signature|X-Goog-Credential|access_token|code|client_secret)=)[^&\s"']+/gi, // signed URLs (Azure SAS sig=, GCS V4), tokens in queries
  /("(?:access_token|refresh_token|id_token|client_secret|private_key|password)"\s*:\s*")[^"]+/gi, // JSON token bodies
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, // PEM keys
  /(vmware_soap_session=)[^;\s"']+/gi, // a vSphere session cookie
];

export interface RedactOptions {
  /** Environment variables whose values are secrets (masked wherever they appear). */
  envNames?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** More shapes (a provider's own); group 1, when present, is a prefix kept in front of the mask. */
  patterns?: readonly RegExp[];
}

/** `text` with every secret it could hold replaced by `***`. */
export function redactSecrets(text: string, options: RedactOptions = {}): string {
  let out = text;
  const env = options.env ?? process.env;
  for (const name of options.envNames ?? []) {
    const value = env[name];
    if (value && value.length >= 4) out = out.split(value).join('***');
  }
  for (const pattern of [...(options.patterns ?? []), ...COMMON_SECRET_PATTERNS]) {
    out = out.replace(pattern, (_match, prefix?: unknown) => `${typeof prefix === 'string' ? prefix : ''}***`);
  }
  return out;
}
