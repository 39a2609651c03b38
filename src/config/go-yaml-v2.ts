// Byte-exact output of gopkg.in/yaml.v2 v2.4.0's Marshal, for `metadata: yaml` files (LinuxKit
// writes the merged config with it). This reimplements the parts of its libyaml-derived
// emitter that a marshalled Go struct reaches: block mappings and sequences (sequences inside
// mappings are not indented), `[]` and `{}` for empty ones, and its choice of scalar style:
// plain unless the text would read back as something else (yaml.v2 resolves YAML 1.1 words
// like `yes`/`on`, numbers, timestamps, base-60 numbers), single quotes when indicators forbid
// plain, double quotes for escapes, literal blocks for multi-line text; long plain and quoted
// scalars fold at spaces past column 80, as yaml.v2 v2.4.0 does.
import {resolveV2} from './go-scalars.ts';

/** A value to marshal: mappings keep the given key order (Go structs) unless `sorted` (Go maps). */
export type YamlValue = null | boolean | number | bigint | string | YamlValue[] | YamlMapping;

export interface YamlMapping {
  kind: 'mapping';
  entries: Array<[string, YamlValue]>;
  /** A Go map: keys are emitted in yaml.v2's natural order (numbers by value). */
  sorted?: boolean;
}

export function mapping(entries: Array<[string, YamlValue | undefined]>, sorted = false): YamlMapping {
  return {kind: 'mapping', entries: entries.filter((e): e is [string, YamlValue] => e[1] !== undefined), sorted};
}

type Style = 'plain' | 'single' | 'double' | 'literal';

const BEST_INDENT = 2;
const BEST_WIDTH = 80;

const isLetter = (c: string) => /\p{L}/u.test(c);
const isDigit = (c: string) => /\p{Nd}/u.test(c);

/** yaml.v2 sorter.go keyList.Less for string keys. */
export function yamlV2KeyLess(a: string, b: string): boolean {
  const ar = [...a];
  const br = [...b];
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) continue;
    const al = isLetter(ar[i]!);
    const bl = isLetter(br[i]!);
    if (al && bl) return ar[i]!.codePointAt(0)! < br[i]!.codePointAt(0)!;
    if (al || bl) return bl;
    let an = 0n;
    let bn = 0n;
    if (ar[i] === '0' || br[i] === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]!); j--) {
        if (ar[j] !== '0') {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    for (; ai < ar.length && isDigit(ar[ai]!); ai++) an = an * 10n + BigInt(ar[ai]!.codePointAt(0)! - 48);
    let bi = i;
    for (; bi < br.length && isDigit(br[bi]!); bi++) bn = bn * 10n + BigInt(br[bi]!.codePointAt(0)! - 48);
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i]!.codePointAt(0)! < br[i]!.codePointAt(0)!;
  }
  return ar.length < br.length;
}

const base60float = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

function isBase60Float(s: string): boolean {
  if (s === '') return false;
  const c = s[0]!;
  if (!(c === '+' || c === '-' || (c >= '0' && c <= '9')) || !s.includes(':')) return false;
  return base60float.test(s);
}

const isBreak = (c: string | undefined) => c === '\r' || c === '\n' || c === '\u0085' || c === '\u2028' || c === '\u2029';
const isSpace = (c: string | undefined) => c === ' ';
const isBlank = (c: string | undefined) => c === ' ' || c === '\t';

function isPrintable(c: string): boolean {
  const cp = c.codePointAt(0)!;
  return (
    cp === 0x0a ||
    (cp >= 0x20 && cp <= 0x7e) ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff)
  );
}

interface Analysis {
  multiline: boolean;
  flowPlain: boolean;
  blockPlain: boolean;
  singleQuoted: boolean;
  block: boolean;
}

/** yaml_emitter_analyze_scalar */
function analyze(value: string): Analysis {
  if (value === '') return {multiline: false, flowPlain: false, blockPlain: true, singleQuoted: true, block: false};
  const chars = [...value];
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;
  if (value.startsWith('---') || value.startsWith('...')) {
    blockIndicators = true;
    flowIndicators = true;
  }
  let precededByWhitespace = true;
  chars.forEach((c, i) => {
    const followedByWhitespace = i + 1 >= chars.length || isBlank(chars[i + 1]);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(c)) {
        flowIndicators = true;
        blockIndicators = true;
      } else if (c === '?' || c === ':') {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      } else if (c === '-' && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else if (',?[]{}'.includes(c)) {
      flowIndicators = true;
    } else if (c === ':') {
      flowIndicators = true;
      if (followedByWhitespace) blockIndicators = true;
    } else if (c === '#' && precededByWhitespace) {
      flowIndicators = true;
      blockIndicators = true;
    }
    if (!isPrintable(c)) special = true;
    if (isSpace(c)) {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlank(c) || isBreak(c) || c === '\0';
  });
  const a: Analysis = {multiline: lineBreaks, flowPlain: true, blockPlain: true, singleQuoted: true, block: true};
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) a.flowPlain = a.blockPlain = false;
  if (trailingSpace) a.block = false;
  if (breakSpace) a.flowPlain = a.blockPlain = a.singleQuoted = false;
  if (spaceBreak || special) a.flowPlain = a.blockPlain = a.singleQuoted = a.block = false;
  if (lineBreaks) a.flowPlain = a.blockPlain = false;
  if (flowIndicators) a.flowPlain = false;
  if (blockIndicators) a.blockPlain = false;
  return a;
}

/** The style yaml.v2's encoder asks for a string (stringv). */
function requestedStringStyle(s: string): Style {
  if (s.includes('\n')) return 'literal';
  const canUsePlain = resolveV2(s).tag === 'str' && !isBase60Float(s);
  return canUsePlain ? 'plain' : 'double';
}

class Emitter {
  out = '';
  column = 0;
  indent = -1;
  indents: number[] = [];
  whitespace = true;
  indention = true;
  flowLevel = 0;

  put(c: string) {
    this.out += c;
    this.column++;
  }
  putBreak() {
    this.out += '\n';
    this.column = 0;
  }
  writeBreak(c: string) {
    if (c === '\n') this.putBreak();
    else {
      this.out += c;
      this.column = 0;
    }
  }
  increaseIndent(flow: boolean, indentless: boolean) {
    this.indents.push(this.indent);
    if (this.indent < 0) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }
  popIndent() {
    this.indent = this.indents.pop()!;
  }
  writeIndent() {
    const indent = Math.max(this.indent, 0);
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.putBreak();
    while (this.column < indent) this.put(' ');
    this.whitespace = true;
    this.indention = true;
  }
  writeIndicator(indicator: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean) {
    if (needWhitespace && !this.whitespace) this.put(' ');
    for (const c of indicator) this.put(c);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
  }

  node(v: YamlValue, ctx: {mapping: boolean; simpleKey: boolean}) {
    if (Array.isArray(v)) return this.sequence(v, ctx);
    if (v !== null && typeof v === 'object') return this.mappingNode(v, ctx);
    if (v === null) return this.scalar('null', 'plain', ctx);
    if (typeof v === 'boolean') return this.scalar(v ? 'true' : 'false', 'plain', ctx);
    if (typeof v === 'number' || typeof v === 'bigint') return this.scalar(BigInt(v).toString(), 'plain', ctx);
    return this.scalar(v, requestedStringStyle(v), ctx);
  }

  sequence(items: YamlValue[], ctx: {mapping: boolean}) {
    if (items.length === 0 || this.flowLevel > 0) {
      // only empty sequences are written in flow style here
      this.writeIndicator('[', true, true, false);
      this.increaseIndent(true, false);
      this.flowLevel++;
      if (items.length > 0) throw new Error('go-yaml-v2: non-empty flow sequences are not supported');
      this.flowLevel--;
      this.popIndent();
      this.writeIndicator(']', false, false, false);
      return;
    }
    this.increaseIndent(false, ctx.mapping && !this.indention);
    for (const item of items) {
      this.writeIndent();
      this.writeIndicator('-', true, false, true);
      this.node(item, {mapping: false, simpleKey: false});
    }
    this.popIndent();
  }

  mappingNode(m: YamlMapping, _ctx: {mapping: boolean}) {
    let entries = m.entries;
    if (m.sorted) entries = [...entries].sort(([a], [b]) => (yamlV2KeyLess(a, b) ? -1 : yamlV2KeyLess(b, a) ? 1 : 0));
    if (entries.length === 0 || this.flowLevel > 0) {
      this.writeIndicator('{', true, true, false);
      this.increaseIndent(true, false);
      this.flowLevel++;
      if (entries.length > 0) throw new Error('go-yaml-v2: non-empty flow mappings are not supported');
      this.flowLevel--;
      this.popIndent();
      this.writeIndicator('}', false, false, false);
      return;
    }
    this.increaseIndent(false, false);
    for (const [k, v] of entries) {
      this.writeIndent();
      // keys here are short single-line strings: always "simple keys"
      this.node(k, {mapping: true, simpleKey: true});
      this.writeIndicator(':', false, false, false);
      this.node(v, {mapping: true, simpleKey: false});
    }
    this.popIndent();
  }

  scalar(value: string, requested: Style, ctx: {simpleKey: boolean}) {
    const a = analyze(value);
    let style = requested;
    if (ctx.simpleKey && a.multiline) style = 'double';
    if (style === 'plain') {
      if ((this.flowLevel > 0 && !a.flowPlain) || (this.flowLevel === 0 && !a.blockPlain)) style = 'single';
      if (value === '' && (this.flowLevel > 0 || ctx.simpleKey)) style = 'single';
    }
    if (style === 'single' && !a.singleQuoted) style = 'double';
    if (style === 'literal' && (!a.block || this.flowLevel > 0 || ctx.simpleKey)) style = 'double';
    this.increaseIndent(true, false);
    const allowBreaks = !ctx.simpleKey;
    const chars = [...value];
    switch (style) {
      case 'plain':
        this.writePlain(chars, allowBreaks);
        break;
      case 'single':
        this.writeSingle(chars, allowBreaks);
        break;
      case 'double':
        this.writeDouble(chars, allowBreaks);
        break;
      case 'literal':
        this.writeLiteral(chars);
        break;
    }
    this.popIndent();
  }

  writePlain(chars: string[], allowBreaks: boolean) {
    if (!this.whitespace) this.put(' ');
    let spaces = false;
    let breaks = false;
    chars.forEach((c, i) => {
      if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && !isSpace(chars[i + 1])) this.writeIndent();
        else this.put(c);
        spaces = true;
      } else if (isBreak(c)) {
        if (!breaks && c === '\n') this.putBreak();
        this.writeBreak(c);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.put(c);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    });
    this.whitespace = false;
    this.indention = false;
  }

  writeSingle(chars: string[], allowBreaks: boolean) {
    this.writeIndicator("'", true, false, false);
    let spaces = false;
    let breaks = false;
    chars.forEach((c, i) => {
      if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && i > 0 && i < chars.length - 1 && !isSpace(chars[i + 1])) this.writeIndent();
        else this.put(c);
        spaces = true;
      } else if (isBreak(c)) {
        if (!breaks && c === '\n') this.putBreak();
        this.writeBreak(c);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        if (c === "'") this.put("'");
        this.put(c);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    });
    this.writeIndicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  writeDouble(chars: string[], allowBreaks: boolean) {
    const bom = chars[0] === '\uFEFF';
    let spaces = false;
    this.writeIndicator('"', true, false, false);
    chars.forEach((c, i) => {
      if (!isPrintable(c) || bom || isBreak(c) || c === '"' || c === '\\') {
        this.put('\\');
        const cp = c.codePointAt(0)!;
        const named: Record<number, string> = {
          0x00: '0',
          0x07: 'a',
          0x08: 'b',
          0x09: 't',
          0x0a: 'n',
          0x0b: 'v',
          0x0c: 'f',
          0x0d: 'r',
          0x1b: 'e',
          0x22: '"',
          0x5c: '\\',
          0x85: 'N',
          0xa0: '_',
          0x2028: 'L',
          0x2029: 'P',
        };
        const n = named[cp];
        if (n !== undefined) this.put(n);
        else {
          const [prefix, width] = cp <= 0xff ? ['x', 2] : cp <= 0xffff ? ['u', 4] : ['U', 8];
          this.put(prefix);
          for (const d of cp.toString(16).toUpperCase().padStart(width, '0')) this.put(d);
        }
        spaces = false;
      } else if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && i > 0 && i < chars.length - 1) {
          this.writeIndent();
          if (isSpace(chars[i + 1])) this.put('\\');
        } else this.put(c);
        spaces = true;
      } else {
        this.put(c);
        spaces = false;
      }
    });
    this.writeIndicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  writeLiteral(chars: string[]) {
    this.writeIndicator('|', true, false, false);
    // block scalar hints: an indentation indicator when the text starts with a space or break,
    // and chomping: "-" without a final break, "+" when it ends with more than one
    if (isSpace(chars[0]) || isBreak(chars[0])) this.writeIndicator(String(BEST_INDENT), false, false, false);
    let chomp = '';
    if (chars.length === 0) chomp = '-';
    else if (!isBreak(chars[chars.length - 1])) chomp = '-';
    else if (chars.length === 1 || isBreak(chars[chars.length - 2])) chomp = '+';
    if (chomp) this.writeIndicator(chomp, false, false, false);
    this.putBreak();
    this.indention = true;
    this.whitespace = true;
    let breaks = true;
    for (const c of chars) {
      if (isBreak(c)) {
        this.writeBreak(c);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.put(c);
        this.indention = false;
        breaks = false;
      }
    }
  }
}

/** yaml.Marshal(v) of gopkg.in/yaml.v2 v2.4.0, for a mapping at the root. */
export function yamlV2Marshal(root: YamlMapping): string {
  const e = new Emitter();
  e.node(root, {mapping: false, simpleKey: false});
  // document end (implicit): finish the last line
  e.indent = -1;
  e.writeIndent();
  return e.out;
}
