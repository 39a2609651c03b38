// Byte-exact Go encoding/json output (json.MarshalIndent), for the files LinuxKit writes with it
// (config.json, runtime.json, `metadata: json`). Callers build the value in Go's field order and
// leave omitted (omitempty) fields undefined; Go maps are JS Maps, whose keys Go sorts by bytes.
// Strings are escaped as Go does: <, > and & as \u003c \u003e \u0026, U+2028/U+2029 escaped,
// invalid UTF-16 (lone surrogates) as \ufffd. Integers may be bigint so 64-bit values keep every digit.

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function goJsonString(s: string): string {
  return JSON.stringify(s)
    .replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\\ud[89a-f][0-9a-f]{2}/g, '\\ufffd');
}

function encode(v: unknown, indent: string, depth: number): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return goJsonString(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      if (!Number.isSafeInteger(v) && !(Number.isInteger(v) && Math.abs(v) < 2 ** 63)) {
        throw new Error(`go-json: only integers are encoded, got ${v}`);
      }
      return BigInt(v).toString();
  }
  const inner = '\n' + indent.repeat(depth + 1);
  const close = '\n' + indent.repeat(depth);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return '[' + v.map((x) => inner + encode(x, indent, depth + 1)).join(',') + close + ']';
  }
  let entries: Array<[string, unknown]>;
  if (v instanceof Map) {
    entries = [...(v as Map<string, unknown>).entries()].sort(([a], [b]) => compareBytes(a, b));
  } else if (typeof v === 'object') {
    entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  } else {
    throw new Error(`go-json: cannot encode ${typeof v}`);
  }
  if (entries.length === 0) return '{}';
  return '{' + entries.map(([k, x]) => inner + goJsonString(k) + ': ' + encode(x, indent, depth + 1)).join(',') + close + '}';
}

/** json.MarshalIndent(v, "", indent) */
export function goMarshalIndent(v: unknown, indent = '    '): string {
  return encode(v, indent, 0);
}

/** A Go map[string]V from a record (sorted on output). */
export function goMap<V>(record: Record<string, V> | undefined): Map<string, V> {
  return new Map(Object.entries(record ?? {}));
}
