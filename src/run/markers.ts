// Finds marker patterns (--wait-for, --fail-on, a kernel's panic line) in a console that
// arrives in chunks split anywhere: in the middle of a line, of an escape sequence, or of a
// UTF-8 character (the caller decodes with a streaming TextDecoder). Patterns are tested one
// line at a time, after colour and cursor escapes are removed, so `ERROR: x` matches
// `\x1b[31mERROR\x1b[0m: x` the way runc prints it.
//
// A line that has not ended yet is tested when the caller calls `flush()`, which the run loop
// does after a short quiet spell: guests print prompts and markers without a newline, and
// waiting for the quiet (rather than testing every partial line) keeps `$`-anchored patterns
// from matching half a line, reports whole lines, and costs nothing per chunk.

import {TskitError} from '../errors.ts';

export interface MarkerPattern<K extends string = string> {
  kind: K;
  regex: RegExp;
}

export interface MarkerHit<K extends string = string> {
  kind: K;
  regex: RegExp;
  /** The line (or the unterminated tail) the pattern matched, escapes removed, at most 1000 characters. */
  line: string;
  /** True when the line had not ended yet. */
  partial: boolean;
}

export interface MatcherOptions {
  /** A line longer than this is tested and then cut to its last `keepOnOverflow` characters. */
  maxLineLength?: number;
  keepOnOverflow?: number;
}

// CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ST), and the other
// escapes (ESC, optional intermediates, one final byte: ESC 7, ESC ( B, ...).
// eslint-disable-next-line no-control-regex
const completeEscapes = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\^-~])/g;
// An escape cut off by the end of the text so far; its rest arrives with the next chunk.
// eslint-disable-next-line no-control-regex
const unfinishedEscape = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*(?:\x1b)?|[ -/]*)?$/;

/** `text` without ANSI/VT escape sequences and without a trailing carriage return. */
export function stripAnsi(text: string): string {
  return text.replace(completeEscapes, '').replace(/\r$/, '');
}

export class ConsoleMatcher<K extends string = string> {
  private readonly patterns: {kind: K; regex: RegExp}[];
  private readonly maxLineLength: number;
  private readonly keepOnOverflow: number;
  /** The current line so far, escapes not yet removed (one may be cut in half). */
  private tail = '';
  /** Patterns that already reported a hit on the current line (by flush or overflow). */
  private readonly hitOnLine = new Set<number>();
  private tailTested = true;

  constructor(patterns: readonly MarkerPattern<K>[], options: MatcherOptions = {}) {
    // Stateful flags would make test() depend on the previous call.
    this.patterns = patterns.map(({kind, regex}) => ({kind, regex: regex.global || regex.sticky ? new RegExp(regex.source, regex.flags.replace(/[gy]/g, '')) : regex}));
    this.maxLineLength = options.maxLineLength ?? 1024 * 1024;
    this.keepOnOverflow = options.keepOnOverflow ?? 4096;
  }

  /** True while the unterminated line holds text that flush() has not tested yet. */
  get hasUntestedTail(): boolean {
    return !this.tailTested;
  }

  /** Feeds decoded console text; returns the hits on the lines it completed, in order. */
  push(text: string): MarkerHit<K>[] {
    const hits: MarkerHit<K>[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = this.tail + text.slice(start, nl);
      this.tail = '';
      this.test(line, false, hits);
      this.hitOnLine.clear();
      start = nl + 1;
    }
    if (start < text.length) {
      this.tail += text.slice(start);
      this.tailTested = false;
      if (this.tail.length > this.maxLineLength) {
        // A line this long is not a console line; test it, then keep only enough of its end for
        // a marker that straddles the cut. hitOnLine stays, so nothing is reported twice.
        this.test(this.tail, true, hits);
        this.tail = this.tail.slice(-this.keepOnOverflow);
      }
    } else if (start > 0) {
      this.tailTested = true;
    }
    return hits;
  }

  /** Tests the unterminated line against every pattern: call after a quiet spell, and at the end. */
  flush(): MarkerHit<K>[] {
    const hits: MarkerHit<K>[] = [];
    if (this.tail !== '' && !this.tailTested) this.test(this.tail, true, hits);
    this.tailTested = true;
    return hits;
  }

  private test(raw: string, partial: boolean, hits: MarkerHit<K>[]): void {
    if (this.hitOnLine.size === this.patterns.length) return;
    let line = stripAnsi(raw);
    if (partial) line = line.replace(unfinishedEscape, '');
    for (const [i, pattern] of this.patterns.entries()) {
      if (this.hitOnLine.has(i)) continue;
      if (pattern.regex.test(line)) {
        this.hitOnLine.add(i);
        hits.push({kind: pattern.kind, regex: pattern.regex, line: line.length > 1000 ? `${line.slice(0, 997)}...` : line, partial});
      }
    }
  }
}

/** Compiles a user's --wait-for/--fail-on text; TskitError naming the flag when it is not a regex. */
export function compileMarker(source: string, flag: string): RegExp {
  try {
    return new RegExp(source);
  } catch (error) {
    throw new TskitError(`${flag}: "${source}" is not a regular expression: ${(error as Error).message}`, {exitCode: 2});
  }
}
