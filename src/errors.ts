// One error type for everything a user can fix (bad YAML, wrong digest, missing file):
// commands print its message alone, without a stack, and exit with its code.
export class TskitError extends Error {
  readonly exitCode: number;

  constructor(message: string, options: {exitCode?: number; cause?: unknown} = {}) {
    super(message, {cause: options.cause});
    this.name = 'TskitError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * Text from untrusted input (a name in a layer, say) made safe for a one-line message:
 * control characters and line separators are written as escapes, so a name cannot break the
 * line or send the terminal escape sequences. Ordinary text is unchanged.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = {'\n': '\\n', '\r': '\\r', '\t': '\\t'};
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
