// From a parsed YAML tree to the typed model, guided by the schema table. Only values of the
// type the schema expects are kept (the schema validator reports the others), so the checks and
// the build that follow can trust the model's types. List indices are preserved so positions
// can still be found by path: a wrong-typed item of an object list becomes an empty object,
// and a list of scalars with a wrong-typed item is left out whole.
import {integerOf, mobySchema, type Schema} from './schema.ts';
import type {YNode} from './yaml-tree.ts';
import type {GoInteger, MobyConfig} from './types.ts';

const SKIP = Symbol('skip');

function integer(v: bigint): GoInteger {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Converts a node by a schema; SKIP when the node does not have the schema's type. */
function convert(node: YNode, schema: Schema): unknown {
  switch (schema.type) {
    case 'string':
      return node.kind === 'scalar' && node.type === 'str' ? node.text : SKIP;
    case 'enum':
      return node.kind === 'scalar' && node.type === 'str' && schema.values.includes(node.text) ? node.text : SKIP;
    case 'boolean':
      return node.kind === 'scalar' && node.type === 'bool' ? node.value : SKIP;
    case 'integer': {
      const v = node.kind === 'scalar' ? integerOf(node) : undefined;
      return v === undefined ? SKIP : integer(v);
    }
    case 'id': {
      if (node.kind !== 'scalar') return SKIP;
      if (node.type === 'str') return node.text;
      const v = integerOf(node);
      return v === undefined ? SKIP : integer(v);
    }
    case 'array': {
      if (node.kind !== 'seq') return SKIP;
      const objects = schema.items.type === 'object';
      const out: unknown[] = [];
      for (const item of node.items) {
        const v = convert(item, schema.items);
        if (v === SKIP) {
          if (!objects) return SKIP;
          out.push({});
        } else out.push(v);
      }
      return out;
    }
    case 'map': {
      if (node.kind !== 'map') return SKIP;
      const entries: Array<[string, unknown]> = [];
      for (const e of node.entries) {
        if (e.keyNode.type !== 'str') continue;
        const v = convert(e.value, schema.values);
        if (v !== SKIP) entries.push([e.key, v]);
      }
      return Object.fromEntries(entries);
    }
    case 'object': {
      if (node.kind !== 'map') return SKIP;
      const entries: Array<[string, unknown]> = [];
      for (const e of node.entries) {
        const sub = Object.hasOwn(schema.props, e.key) ? schema.props[e.key] : undefined;
        if (!sub || e.keyNode.type !== 'str') continue;
        const v = convert(e.value, sub);
        if (v !== SKIP) entries.push([e.key, v]);
      }
      return Object.fromEntries(entries);
    }
  }
}

/** The typed model of one file's root node (an empty config for an empty or null document). */
export function toModel(root: YNode | undefined, schema: Schema = mobySchema): MobyConfig {
  if (!root || root.kind !== 'map') return {};
  const v = convert(root, schema);
  return v === SKIP ? {} : (v as MobyConfig);
}

/** Converts any node by a schema (used for image labels); undefined when the type does not match. */
export function convertNode<T>(node: YNode, schema: Schema): T | undefined {
  const v = convert(node, schema);
  return v === SKIP ? undefined : (v as T);
}
