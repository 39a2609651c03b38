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
