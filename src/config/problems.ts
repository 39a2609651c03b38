// Every problem found in a configuration, with where it is. Loading collects all of them
// and throws one ConfigError listing each as `file:line:col: message`.
import {TskitError} from '../errors.ts';

export interface ConfigProblem {
  /** The source as given: a path, a URL, or "<stdin>". */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  message: string;
  /** A warning is reported but does not make the configuration invalid. */
  warning?: boolean;
}

export const isError = (p: ConfigProblem) => !p.warning;

/** `file:line:col: message`, or `file: message` for a problem with the source as a whole (line 0). */
export function formatProblem(p: ConfigProblem): string {
  const message = p.warning ? `warning: ${p.message}` : p.message;
  return p.line > 0 ? `${p.file}:${p.line}:${p.col}: ${message}` : `${p.file}: ${message}`;
}

/** Orders problems by source (in the given order), then by position. */
export function sortProblems(problems: ConfigProblem[], sources: string[]): ConfigProblem[] {
  const rank = (f: string) => {
    const i = sources.indexOf(f);
    return i < 0 ? sources.length : i;
  };
  return [...problems].sort((a, b) => rank(a.file) - rank(b.file) || a.line - b.line || a.col - b.col);
}

export class ConfigError extends TskitError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const n = problems.length;
    super(`${n === 1 ? 'a problem' : `${n} problems`} in the configuration:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
