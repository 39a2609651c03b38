// How Go's YAML libraries read a plain scalar. LinuxKit decodes configs with gopkg.in/yaml.v3
// (where `yes` is a string and `0755` an octal int) and writes `metadata: yaml` files with
// gopkg.in/yaml.v2 (where `yes` is a bool, so it must be quoted). The `yaml` npm package follows
// YAML 1.2 exactly, which differs from both, so tskit resolves scalars itself with these rules.

export type ResolvedTag = 'null' | 'bool' | 'int' | 'float' | 'str' | 'timestamp' | 'merge';

export interface Resolved {
  tag: ResolvedTag;
  /** null, boolean, bigint (ints, full int64/uint64 range), number (floats) or string. */
  value: null | boolean | bigint | number | string;
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** strconv.ParseUint(s, base, 64) without underscores; base 0 picks 0x/0o/0b/0 prefixes like Go. */
export function goParseUint(s: string, base: number): bigint | undefined {
  if (s === '') return undefined;
  let digits = s;
  if (base === 0) {
    base = 10;
    if (s[0] === '0') {
      const p = s[1]?.toLowerCase();
      if (s.length >= 3 && p === 'b') [base, digits] = [2, s.slice(2)];
      else if (s.length >= 3 && p === 'o') [base, digits] = [8, s.slice(2)];
      else if (s.length >= 3 && p === 'x') [base, digits] = [16, s.slice(2)];
      else [base, digits] = [8, s.slice(1)];
    }
  }
  let n = 0n;
  const b = BigInt(base);
  for (const ch of digits) {
    const d = parseInt(ch, 36);
    if (Number.isNaN(d) || d >= base) return undefined;
    n = n * b + BigInt(d);
    if (n > UINT64_MAX) return undefined;
  }
  return n;
}

/** strconv.ParseInt(s, base, 64): an optional sign, then goParseUint, within int64. */
export function goParseInt(s: string, base: number): bigint | undefined {
  let neg = false;
  let rest = s;
  if (s[0] === '+' || s[0] === '-') {
    neg = s[0] === '-';
    rest = s.slice(1);
  }
  const u = goParseUint(rest, base);
  if (u === undefined) return undefined;
  const v = neg ? -u : u;
  if (v < INT64_MIN || v > INT64_MAX) return undefined;
  return v;
}

const yamlStyleFloat = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const dotFloat = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** yaml's parseTimestamp: the four layouts Go accepts (1- or 2-digit month, day, hour, minute, second). */
export function isGoTimestamp(s: string): boolean {
  if (!/^[0-9]{4}-/.test(s)) return false;
  const m =
    /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:([Tt])|( ))([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$/.exec(s);
  if (!m) return false;
  const [, y, mo, d, t, space, hh, mm, ss, , zone] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(Number(y), month)) return false;
  if (hh === undefined) return true;
  if (Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59) return false;
  // "T" layouts require a zone; the space layout has none.
  if (t !== undefined && zone === undefined) return false;
  if (space !== undefined && zone !== undefined) return false;
  if (zone && zone !== 'Z') {
    const [zh, zm] = zone.slice(1).split(':').map(Number);
    if ((zh ?? 0) > 23 || (zm ?? 0) > 59) return false;
  }
  return true;
}

const v3Map: Record<string, Resolved> = {};
const v2Map: Record<string, Resolved> = {};
for (const [tag, value, words, v2only] of [
  ['bool', true, ['true', 'True', 'TRUE'], false],
  ['bool', false, ['false', 'False', 'FALSE'], false],
  ['null', null, ['', '~', 'null', 'Null', 'NULL'], false],
  ['float', NaN, ['.nan', '.NaN', '.NAN'], false],
  ['float', Infinity, ['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'], false],
  ['float', -Infinity, ['-.inf', '-.Inf', '-.INF'], false],
  ['merge', '<<', ['<<'], false],
  ['bool', true, ['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'], true],
  ['bool', false, ['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'], true],
] as Array<[ResolvedTag, Resolved['value'], string[], boolean]>) {
  for (const w of words) {
    v2Map[w] = {tag, value};
    if (!v2only) v3Map[w] = {tag, value};
  }
}

function hint(c: string | undefined): 'S' | 'D' | 'M' | '.' | 'N' | undefined {
  if (c === undefined) return 'N';
  if (c === '+' || c === '-') return 'S';
  if (c >= '0' && c <= '9') return 'D';
  if ('yYnNtTfFoO~'.includes(c)) return 'M';
  if (c === '.') return '.';
  return undefined;
}

function resolvePlain(s: string, map: Record<string, Resolved>, v3: boolean): Resolved {
  const h = hint(s[0]);
  if (h === undefined) return {tag: 'str', value: s};
  const item = map[s];
  if (item) return item;
  if (h === '.') {
    if (dotFloat.test(s)) return {tag: 'float', value: Number(s)};
  } else if (h === 'D' || h === 'S') {
    if (isGoTimestamp(s)) return {tag: 'timestamp', value: s};
    const plain = s.replaceAll('_', '');
    const i = goParseInt(plain, 0);
    if (i !== undefined) return {tag: 'int', value: i};
    const u = goParseUint(plain, 0);
    if (u !== undefined) return {tag: 'int', value: u};
    if (yamlStyleFloat.test(plain)) {
      const f = Number(plain);
      if (Number.isFinite(f)) return {tag: 'float', value: f};
    }
    if (plain.startsWith('-0b')) {
      const v = goParseInt('-' + plain.slice(3), 2);
      if (v !== undefined) return {tag: 'int', value: v};
    }
    if (v3) {
      if (plain.startsWith('0o')) {
        const v = goParseInt(plain.slice(2), 8) ?? goParseUint(plain.slice(2), 8);
        if (v !== undefined) return {tag: 'int', value: v};
      } else if (plain.startsWith('-0o')) {
        const v = goParseInt('-' + plain.slice(3), 8);
        if (v !== undefined) return {tag: 'int', value: v};
      }
    }
  }
  return {tag: 'str', value: s};
}

/** gopkg.in/yaml.v3's resolve() for an untagged plain scalar. */
export function resolveV3(s: string): Resolved {
  return resolvePlain(s, v3Map, true);
}

/** gopkg.in/yaml.v2's resolve() for an untagged plain scalar (YAML 1.1 booleans). */
export function resolveV2(s: string): Resolved {
  return resolvePlain(s, v2Map, false);
}
