// YAML text to a small tree of maps, sequences and scalars that keeps the 1-based line and column
// of every node, with scalars typed the way LinuxKit's decoder (gopkg.in/yaml.v3) types them.
// Syntax errors, duplicate keys and tags that do not fit their value come back as problems with
// positions rather than exceptions, so one run can report all of them.
import {
  CST,
  Lexer,
  LineCounter,
  parseAllDocuments,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Document,
  type Node as YamlNode,
  type Scalar,
} from 'yaml';
import {resolveV3, goParseInt, goParseUint, type Resolved} from './go-scalars.ts';

export interface Pos {
  line: number;
  col: number;
}

export interface YScalar {
  kind: 'scalar';
  pos: Pos;
  /** How LinuxKit's decoder sees it: ints are bigint (full int64/uint64 range), timestamps stay text. */
  type: 'null' | 'bool' | 'int' | 'float' | 'str';
  value: null | boolean | bigint | number | string;
  /** The scalar's text as written (after unquoting). */
  text: string;
  /** True for an absent value (`key:` with nothing after it). */
  empty: boolean;
}

export interface YEntry {
  key: string;
  keyNode: YScalar;
  value: YNode;
}

export interface YMap {
  kind: 'map';
  pos: Pos;
  entries: YEntry[];
}

export interface YSeq {
  kind: 'seq';
  pos: Pos;
  items: YNode[];
}

export type YNode = YMap | YSeq | YScalar;

export interface TreeProblem {
  pos: Pos;
  message: string;
  /** Reported, but the file is still accepted. */
  warning?: boolean;
}

export interface ParsedYaml {
  /** The first document's root, or undefined when the text holds no document at all. */
  root: YNode | undefined;
  problems: TreeProblem[];
}

const TAG_PREFIX = 'tag:yaml.org,2002:';

/**
 * Nodes a configuration may have, counted before it is parsed: LinuxKit configurations have
 * hundreds, and the YAML parser spends about 15 µs and 2 KB on each (a 16 MiB file of
 * one-letter scalars took it a minute and 4 GB before V8 ran out of memory).
 */
export const MAX_YAML_NODES = 50_000;
/** Lexical tokens (comments, line breaks and spaces included), for the same reason. */
export const MAX_YAML_TOKENS = 500_000;
/** Nesting of collections (the parser's own recursion fails somewhere past 800). */
export const MAX_YAML_DEPTH = 200;
// yaml.v3's bound on alias expansion, which LinuxKit's decoder applies: past 1000 nodes and
// 100 expanded from aliases, the expanded share may be 99% of the nodes up to 400,000 nodes,
// falling to 10% at 4,000,000, so a "billion laughs" stops after a few thousand nodes.
const ALIAS_RATIO_LOW = 400_000;
const ALIAS_RATIO_HIGH = 4_000_000;

function allowedAliasRatio(decoded: number): number {
  if (decoded <= ALIAS_RATIO_LOW) return 0.99;
  if (decoded >= ALIAS_RATIO_HIGH) return 0.1;
  return 0.99 - (0.89 * (decoded - ALIAS_RATIO_LOW)) / (ALIAS_RATIO_HIGH - ALIAS_RATIO_LOW);
}

/** A limit the document goes past, where it first does. */
class YamlLimit extends Error {
  readonly pos: Pos;
  constructor(pos: Pos, message: string) {
    super(message);
    this.pos = pos;
  }
}

/**
 * Counts nodes and flow nesting with the lexer alone (fast, and it stops at the first limit
 * passed), so a document too big for the parser is refused before the parser sees it.
 */
function checkBudget(text: string, posOf: (offset: number) => Pos): void {
  let nodes = 0;
  let depth = 0;
  let offset = 0;
  let tokens = 0;
  for (const token of new Lexer().lex(text)) {
    if (++tokens > MAX_YAML_TOKENS) throw new YamlLimit(posOf(offset), `more than ${MAX_YAML_TOKENS} YAML tokens: tskit refuses a configuration this big (LinuxKit's have a few thousand)`);
    // the lexer's control tokens are not in the text
    if (token === CST.DOCUMENT || token === CST.FLOW_END || token === CST.SCALAR) {
      if (token === CST.SCALAR) nodes++;
    } else {
      switch (CST.tokenType(token)) {
        case 'flow-map-start':
        case 'flow-seq-start':
          nodes++;
          if (++depth > MAX_YAML_DEPTH) throw new YamlLimit(posOf(offset), `collections nested more than ${MAX_YAML_DEPTH} deep: tskit refuses the configuration`);
          break;
        case 'flow-map-end':
        case 'flow-seq-end':
          depth = Math.max(0, depth - 1);
          break;
        case 'single-quoted-scalar':
        case 'double-quoted-scalar':
        case 'alias':
        case 'seq-item-ind':
          nodes++;
          break;
      }
      offset += token.length;
    }
    if (nodes > MAX_YAML_NODES) throw new YamlLimit(posOf(offset), `more than ${MAX_YAML_NODES} YAML nodes: tskit refuses a configuration this big (LinuxKit's have hundreds)`);
  }
}

/**
 * Parses YAML text; never throws for bad input. Text that does not parse only because a
 * column-1 comment interrupts a block scalar (LinuxKit's own static-ip example does this)
 * is read with those comment lines taken as comments, with a warning.
 */
export function parseYamlTree(text: string): ParsedYaml {
  const strict = parseYamlTreeOnce(text, []);
  if (!strict.problems.some((p) => p.message.startsWith('YAML syntax error'))) return strict;
  const repair = dropStrayBlockComments(text);
  if (repair.removed.length === 0) return strict;
  const repaired = parseYamlTreeOnce(repair.text, repair.removed);
  if (repaired.problems.some((p) => p.message.startsWith('YAML syntax error'))) return strict;
  const warnings: TreeProblem[] = repair.removed.map((line) => ({
    pos: {line, col: 1},
    warning: true,
    message:
      `a comment at column 1 inside the block scalar above ends it in YAML, so LinuxKit rejects this file; ` +
      `tskit reads the line as a comment and keeps the block going (indent it like the block's lines to keep it as text, or remove it)`,
  }));
  return {root: repaired.root, problems: [...warnings, ...repaired.problems]};
}

function parseYamlTreeOnce(text: string, removedLines: number[]): ParsedYaml {
  const lc = new LineCounter();
  const problems: TreeProblem[] = [];
  const posOf = (offset: number | undefined): Pos => {
    const p = lc.linePos(offset ?? 0);
    let line = p.line;
    // report lines of the text as written, before any stray comment lines were dropped
    for (const removed of removedLines) if (removed <= line) line++;
    return {line, col: p.col};
  };
  try {
    checkBudget(text, (offset) => {
      // only on a refusal: the line counter is filled by the parser, which has not run
      const before = text.slice(0, offset);
      let line = before.split('\n').length;
      for (const removed of removedLines) if (removed <= line) line++;
      return {line, col: offset - before.lastIndexOf('\n')};
    });
  } catch (error) {
    if (error instanceof YamlLimit) return {root: undefined, problems: [{pos: error.pos, message: error.message}]};
    throw error;
  }
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      schema: 'failsafe',
      lineCounter: lc,
      prettyErrors: false,
      uniqueKeys: false,
      strict: true,
      stringKeys: false,
    }) as Document.Parsed[];
  } catch (err) {
    return {root: undefined, problems: [{pos: {line: 1, col: 1}, message: `YAML syntax error: ${(err as Error).message}`}]};
  }
  if (!Array.isArray(docs)) docs = [docs];
  // Only the first syntax error: the ones after it are usually the parser losing its footing.
  const syntax = docs.flatMap((d) => d.errors)[0];
  if (syntax) {
    const pos = posOf(syntax.pos[0]);
    if (/Maximum call stack size exceeded/.test(syntax.message)) {
      problems.push({pos, message: `collections nested more than ${MAX_YAML_DEPTH} deep: tskit refuses the configuration`});
      return {root: undefined, problems};
    }
    problems.push({pos, message: `YAML syntax error: ${cleanMessage(syntax.message)}${blockScalarCommentHint(text, pos.line)}`});
    return {root: undefined, problems};
  }
  const first = docs[0];
  if (!first) return {root: undefined, problems};
  for (const later of docs.slice(1)) {
    if (later.contents !== null && !(isScalar(later.contents) && later.contents.value === '' && later.contents.type === 'PLAIN')) {
      problems.push({
        pos: posOf(later.range[0]),
        message: 'only one YAML document is allowed per file (LinuxKit reads the first and ignores the rest)',
      });
    }
  }

  // yaml.v3's counters: every node built, those built while expanding an alias
  let decoded = 0;
  let expanded = 0;
  let aliasDepth = 0;
  let aliasPos: Pos = {line: 1, col: 1};
  const build = (node: YamlNode | null, fallback: Pos, seen: Set<YamlNode>, depth = 0): YNode => {
    decoded++;
    if (aliasDepth > 0) expanded++;
    if (expanded > 100 && decoded > 1000 && expanded / decoded > allowedAliasRatio(decoded)) {
      throw new YamlLimit(aliasPos, `the document expands aliases too much (${expanded} of ${decoded} nodes so far come from aliases; yaml.v3, which LinuxKit uses, refuses it too)`);
    }
    if (depth > MAX_YAML_DEPTH) throw new YamlLimit(posOf(node?.range?.[0]), `collections nested more than ${MAX_YAML_DEPTH} deep: tskit refuses the configuration`);
    if (node === null) return {kind: 'scalar', pos: fallback, type: 'null', value: null, text: '', empty: true};
    if (isAlias(node)) {
      const target = node.resolve(first) as YamlNode | undefined;
      if (!target) {
        problems.push({pos: posOf(node.range?.[0]), message: `unknown alias *${node.source}`});
        return {kind: 'scalar', pos: posOf(node.range?.[0]), type: 'null', value: null, text: '', empty: true};
      }
      if (seen.has(target)) {
        problems.push({pos: posOf(node.range?.[0]), message: `alias *${node.source} refers to itself`});
        return {kind: 'scalar', pos: posOf(node.range?.[0]), type: 'null', value: null, text: '', empty: true};
      }
      const inner = new Set(seen);
      inner.add(target);
      const outerPos = aliasPos;
      if (aliasDepth === 0) aliasPos = posOf(node.range?.[0]);
      aliasDepth++;
      try {
        return build(target, posOf(node.range?.[0]), inner, depth);
      } finally {
        aliasDepth--;
        aliasPos = outerPos;
      }
    }
    const pos = posOf(node.range?.[0]);
    if (isScalar(node)) return scalar(node, pos);
    if (isSeq(node)) {
      return {kind: 'seq', pos, items: node.items.map((item) => build(item as YamlNode | null, pos, seen, depth + 1))};
    }
    if (isMap(node)) {
      const entries: YEntry[] = [];
      const merges: YNode[] = [];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = pair.key as YamlNode | null;
        let keyNode: YNode;
        if (k !== null && !isScalar(k) && !isAlias(k)) {
          problems.push({pos: posOf(k.range?.[0]), message: 'mapping keys must be plain strings, not collections'});
          continue;
        }
        keyNode = build(k, pos, seen, depth + 1);
        if (keyNode.kind !== 'scalar') {
          problems.push({pos: keyNode.pos, message: 'mapping keys must be plain strings, not collections'});
          continue;
        }
        const keyPos = keyNode.pos;
        const value = build(pair.value as YamlNode | null, keyPos, seen, depth + 1);
        // an absent value (`key:`) has no text of its own: it is where its key is
        if (value.kind === 'scalar' && value.empty) value.pos = keyPos;
        if (keyNode.type === 'str' && keyNode.text === '<<' && isScalar(k) && k.type === 'PLAIN' && !k.tag) {
          merges.push(value);
          continue;
        }
        const key = keyNode.text;
        const dup = entries.find((e) => e.key === key);
        if (dup) {
          problems.push({
            pos: keyPos,
            message: `duplicate key "${key}" (first defined at line ${dup.keyNode.pos.line})`,
          });
          continue;
        }
        entries.push({key, keyNode, value});
      }
      // `<<` merge keys (YAML 1.1, supported by yaml.v3): keys written in the mapping win.
      for (const m of merges) {
        const sources = m.kind === 'seq' ? m.items : [m];
        for (const src of sources) {
          if (src.kind !== 'map') {
            problems.push({pos: src.pos, message: 'a merge key (<<) needs a mapping or a list of mappings'});
            continue;
          }
          for (const e of src.entries) {
            if (!entries.some((x) => x.key === e.key)) entries.push(e);
          }
        }
      }
      return {kind: 'map', pos, entries};
    }
    problems.push({pos, message: 'unsupported YAML node'});
    return {kind: 'scalar', pos, type: 'null', value: null, text: '', empty: true};
  };

  const scalar = (node: Scalar, pos: Pos): YScalar => {
    const text = String(node.value ?? '');
    const tag = node.tag ? shortTag(node.tag) : '';
    const quoted = node.type !== 'PLAIN' && node.type !== undefined;
    const empty = node.type === 'PLAIN' && text === '' && !node.tag && (node.range?.[0] === node.range?.[1]);
    // As yaml.v3: quoted and block scalars without a tag (or with the bare "!") are strings.
    if (tag === '!!str' || ((tag === '' || tag === '!') && quoted)) {
      return {kind: 'scalar', pos, type: 'str', value: text, text, empty: false};
    }
    if (tag !== '' && !['!!bool', '!!int', '!!float', '!!null', '!!timestamp'].includes(tag)) {
      // Unknown tags (custom ones, !!binary...) decode as their text.
      return {kind: 'scalar', pos, type: 'str', value: text, text, empty: false};
    }
    const r = resolveTagged(tag, text);
    if (typeof r === 'string') {
      problems.push({pos, message: r});
      return {kind: 'scalar', pos, type: 'str', value: text, text, empty: false};
    }
    switch (r.tag) {
      case 'null':
        return {kind: 'scalar', pos, type: 'null', value: null, text, empty};
      case 'bool':
      case 'int':
      case 'float':
        return {kind: 'scalar', pos, type: r.tag, value: r.value, text, empty: false};
      default:
        // timestamps and `<<` used as a value are strings to every field LinuxKit has
        return {kind: 'scalar', pos, type: 'str', value: text, text, empty: false};
    }
  };

  let root: YNode;
  try {
    root = build(first.contents as YamlNode | null, {line: 1, col: 1}, new Set());
  } catch (error) {
    if (error instanceof YamlLimit) return {root: undefined, problems: [...problems, {pos: error.pos, message: error.message}]};
    throw error;
  }
  const blank = first.contents === null || (root.kind === 'scalar' && root.empty);
  if (blank && /^\s*$/.test(text.replace(/#.*$/gm, ''))) return {root: undefined, problems};
  return {root, problems};
}

function shortTag(tag: string): string {
  return tag.startsWith(TAG_PREFIX) ? '!!' + tag.slice(TAG_PREFIX.length) : tag;
}

/** yaml.v3 resolve() with an explicit or empty tag; a string result is the decoder's error. */
function resolveTagged(tag: string, text: string): Resolved | string {
  const r = resolveV3(text);
  if (tag === '' || tag === '!!' + r.tag) return r;
  if (tag === '!!float' && r.tag === 'int') return {tag: 'float', value: Number(r.value)};
  if (tag === '!!int' && r.tag === 'str') {
    // "!!int" on text that only parses with an explicit tag (rare): mirror resolve's failure
    const v = goParseInt(text.replaceAll('_', ''), 0) ?? goParseUint(text.replaceAll('_', ''), 0);
    if (v !== undefined) return {tag: 'int', value: v};
  }
  const rtag = r.tag === 'merge' ? '!!merge' : '!!' + r.tag;
  return `cannot decode ${rtag} \`${text}\` as a ${tag}`;
}

/**
 * A line starting with "#" at column 1 right after a block scalar header (`key: |`) is not part
 * of the block: it ends the block (YAML, yaml.v3 and LinuxKit agree), and the block's indented
 * lines that follow no longer parse. Say so when that is what went wrong.
 */
function blockScalarCommentHint(text: string, errorLine: number): string {
  const lines = text.split(/\r?\n/);
  for (let i = errorLine - 1; i >= 1 && i >= errorLine - 50; i--) {
    if (!/^#/.test(lines[i] ?? '')) continue;
    let j = i - 1;
    while (j >= 0 && /^#/.test(lines[j] ?? '')) j--;
    const header = (lines[j] ?? '').replace(/\s+#.*$/, '');
    if (/:\s*[|>][0-9+-]*\s*$/.test(header) || /^\s*-\s*[|>][0-9+-]*\s*$/.test(header)) {
      return ` (line ${i + 1} starts with "#" at column 1 inside the block scalar begun on line ${j + 1}: that ends the block; indent the line like the block's other lines to keep it as text)`;
    }
  }
  return '';
}

/**
 * Finds lines that start with "#" left of a block scalar's indentation while the block's
 * indented lines go on after them, and returns the text without those lines (and their
 * 1-based numbers). Only used on text that does not parse as written.
 */
export function dropStrayBlockComments(text: string): {text: string; removed: number[]} {
  const lines = text.split('\n');
  const removed: number[] = [];
  const indentOf = (line: string) => line.length - line.trimStart().length;
  const isBlank = (line: string) => line.trim() === '';
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i]!.replace(/\s+#.*$/, '');
    if (!/(?::|^\s*-|\s-)\s*[|>][0-9+-]*\s*$/.test(header)) continue;
    const parentIndent = indentOf(lines[i]!);
    // the block's indentation: its first line that is neither blank nor such a comment
    let contentIndent = -1;
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j]!;
      if (isBlank(line) || (line.trimStart().startsWith('#') && indentOf(line) <= parentIndent)) continue;
      contentIndent = indentOf(line);
      break;
    }
    if (contentIndent <= parentIndent) continue;
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j]!;
      if (isBlank(line) || indentOf(line) >= contentIndent) continue;
      if (!line.trimStart().startsWith('#')) break; // the block really ends here
      let k = j + 1;
      while (k < lines.length && (isBlank(lines[k]!) || (lines[k]!.trimStart().startsWith('#') && indentOf(lines[k]!) < contentIndent))) k++;
      if (k < lines.length && indentOf(lines[k]!) >= contentIndent) removed.push(j + 1);
      else break;
    }
  }
  const drop = new Set(removed);
  return {text: lines.filter((_, i) => !drop.has(i + 1)).join('\n'), removed};
}

function cleanMessage(message: string): string {
  // The yaml package appends "at line N, column M" itself; we print positions in front.
  return message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
}
