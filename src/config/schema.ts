// LinuxKit's JSON schema for the YAML config (moby/schema.go), as a declarative table, and a
// validator that reports every violation at the node it concerns. Integer fields also carry
// the Go type they decode into, because yaml.v3 refuses values that do not fit it.
//
// Fields marked `ignored` pass LinuxKit's schema but are silently dropped by its decoder: it
// reads runtime-spec structs through yaml.v3, which only knows their lower-cased Go field
// names (`hostid`, `kerneltcp`), while the schema only allows the camel-case JSON names
// (`hostID`, `kernelTCP`). Nothing written under those names ever reaches config.json, so
// tskit reports them instead of building something other than what the file says.
import type {YMap, YNode, YScalar, Pos} from './yaml-tree.ts';

/** The Go type an integer decodes into; 'any' for fields LinuxKit never decodes. */
export type GoInt = 'int' | 'int64' | 'uint64' | 'uint32' | 'uint16' | 'any';

export type Schema =
  | {type: 'string'}
  | {type: 'boolean'}
  | {type: 'integer'; go: GoInt}
  /** anyOf string | integer (uid, gid): decoded into a Go interface{}, so any integer passes. */
  | {type: 'id'}
  | {type: 'array'; items: Schema}
  | {type: 'object'; props: Record<string, Schema>; required?: string[]; ignored?: Record<string, Ignored>}
  /** An object whose values all match (sysctl, annotations). */
  | {type: 'map'; values: Schema}
  | {type: 'enum'; values: string[]};

/** A field the schema allows but the decoder drops: the name the decoder would read, and the schema's rule. */
export interface Ignored {
  goName: string;
  schema: Schema;
}

const str: Schema = {type: 'string'};
const bool: Schema = {type: 'boolean'};
const int = (go: GoInt): Schema => ({type: 'integer', go});
const strings: Schema = {type: 'array', items: str};
const mapstring: Schema = {type: 'map', values: str};
const id: Schema = {type: 'id'};
const obj = (props: Record<string, Schema>, extra: {required?: string[]; ignored?: Record<string, Ignored>} = {}): Schema => ({
  type: 'object',
  props,
  ...extra,
});
const anyInt = int('any');
const dropped = (goName: string, schema: Schema = anyInt): Ignored => ({goName, schema});
const arr = (items: Schema): Schema => ({type: 'array', items});

// LinuxIDMapping is all uint32; yaml.v3 reads `containerid` and `hostid`.
const idmapping = obj({size: int('uint32')}, {ignored: {hostID: dropped('hostid'), containerID: dropped('containerid')}});

const mount = obj({
  destination: str,
  type: str,
  source: str,
  options: strings,
  uidmappings: arr(idmapping),
  gidmappings: arr(idmapping),
});

const device = obj({path: str, type: str, major: int('int64'), minor: int('int64'), mode: str});

const throttle = arr(obj({major: anyInt, minor: anyInt, rate: anyInt}));

const devicecgroup = obj({allow: bool, type: str, major: int('int64'), minor: int('int64'), access: str});

const resources = obj(
  {
    devices: arr(devicecgroup),
    memory: obj(
      {limit: int('int64'), reservation: int('int64'), swap: int('int64'), kernel: int('int64'), swappiness: int('uint64')},
      {ignored: {kernelTCP: dropped('kerneltcp'), disableOOMKiller: dropped('disableoomkiller', bool)}},
    ),
    cpu: obj(
      {shares: int('uint64'), quota: int('int64'), period: int('uint64'), cpus: str, mems: str},
      {ignored: {realtimeRuntime: dropped('realtimeruntime'), realtimePeriod: dropped('realtimeperiod')}},
    ),
    pids: obj({limit: int('int64')}),
    blockio: obj(
      {weight: int('uint16')},
      {
        ignored: {
          leafWeight: dropped('leafweight'),
          weightDevice: dropped('weightdevice', arr(obj({major: anyInt, minor: anyInt, weight: anyInt, leafWeight: anyInt}))),
          throttleReadBpsDevice: dropped('throttlereadbpsdevice', throttle),
          throttleWriteBpsDevice: dropped('throttlewritebpsdevice', throttle),
          throttleReadIOPSDevice: dropped('throttlereadiopsdevice', throttle),
          throttleWriteIOPSDevice: dropped('throttlewriteiopsdevice', throttle),
        },
      },
    ),
    network: obj({priorities: arr(obj({name: str, priority: int('uint32')}))}, {ignored: {classID: dropped('classid')}}),
  },
  {ignored: {hugepageLimits: dropped('hugepagelimits', arr(obj({pageSize: anyInt, limit: anyInt})))}},
);

const namespaces = obj({cgroup: str, ipc: str, mnt: str, net: str, pid: str, user: str, uts: str});

const runtime = obj({
  cgroups: strings,
  mounts: arr(mount),
  mkdir: strings,
  interfaces: arr(obj({name: str, add: str, peer: str, createInRoot: bool})),
  bindNS: namespaces,
  namespace: str,
});

/** The fields an image entry may carry; also what an org.mobyproject.config label may carry. */
export const imageConfigProps: Record<string, Schema> = {
  capabilities: strings,
  'capabilities.add': strings,
  ambient: strings,
  mounts: arr(mount),
  binds: strings,
  'binds.add': strings,
  devices: arr(device),
  tmpfs: strings,
  command: strings,
  env: strings,
  cwd: str,
  net: str,
  pid: str,
  ipc: str,
  uts: str,
  userns: str,
  readonly: bool,
  maskedPaths: strings,
  readonlyPaths: strings,
  uid: id,
  gid: id,
  additionalGids: arr(id),
  noNewPrivileges: bool,
  hostname: str,
  oomScoreAdj: int('int'),
  rootfsPropagation: str,
  cgroupsPath: str,
  resources,
  sysctl: mapstring,
  rlimits: strings,
  uidMappings: arr(idmapping),
  gidMappings: arr(idmapping),
  annotations: mapstring,
  runtime,
};

export const imageSchema: Schema = obj({name: str, image: str, ...imageConfigProps}, {required: ['name', 'image']});

export const mobySchema: Schema = obj({
  kernel: obj({image: str, cmdline: str, binary: str, tar: str, ucode: str}),
  init: strings,
  onboot: arr(imageSchema),
  onshutdown: arr(imageSchema),
  services: arr(imageSchema),
  trust: obj({image: strings, org: strings}),
  files: arr(
    obj({
      path: str,
      directory: bool,
      symlink: str,
      contents: str,
      source: str,
      metadata: str,
      optional: bool,
      mode: str,
      uid: id,
      gid: id,
    }),
  ),
  volumes: arr(obj({name: str, image: str, readonly: bool, format: {type: 'enum', values: ['oci', 'filesystem']}, platforms: strings})),
  // tskit extension (LinuxKit has no such key): the image bootable disk and ISO layouts take their boot loaders from
  bootloader: obj({image: str}),
});

export type Path = Array<string | number>;

export interface SchemaProblem {
  pos: Pos;
  path: Path;
  message: string;
}

/** `services[0].binds.add[1]` */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

export function describe(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  switch (node.type) {
    case 'null':
      return node.empty ? 'nothing' : 'null';
    case 'bool':
      return `a boolean (${node.text})`;
    case 'int':
      return `an integer (${node.text})`;
    case 'float':
      return `a number (${node.text})`;
    default:
      return `a string (${JSON.stringify(node.text)})`;
  }
}

const GO_INT_RANGE: Record<GoInt, [bigint, bigint]> = {
  int: [-(1n << 63n), (1n << 63n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  uint16: [0n, (1n << 16n) - 1n],
  any: [-(1n << 1024n), 1n << 1024n],
};

/** The integer a scalar holds the way the schema sees it (an integral float counts), or undefined. */
export function integerOf(node: YScalar): bigint | undefined {
  if (node.type === 'int') return node.value as bigint;
  if (node.type === 'float' && Number.isInteger(node.value)) return BigInt(node.value as number);
  return undefined;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

function suggestion(key: string, known: string[]): string {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(key.length / 4)) ? ` (did you mean "${best}"?)` : '';
}

export interface ValidateOptions {
  /**
   * What to do with fields LinuxKit's schema allows but its decoder drops: 'reject' (YAML files
   * the user can fix) or 'accept' (an image's label, which LinuxKit builds from regardless).
   */
  dropped: 'reject' | 'accept';
}

/** Checks a node against a schema, appending every problem found. */
export function validateNode(node: YNode, schema: Schema, path: Path, out: SchemaProblem[], opts: ValidateOptions = {dropped: 'reject'}): void {
  const at = formatPath(path);
  const prefix = at === '' ? '' : `${at}: `;
  const wrong = (expected: string): void => {
    out.push({pos: node.pos, path, message: `${prefix}expected ${expected}, got ${describe(node)}`});
  };
  switch (schema.type) {
    case 'string':
      if (node.kind !== 'scalar' || node.type !== 'str') wrong('a string');
      return;
    case 'boolean':
      if (node.kind !== 'scalar' || node.type !== 'bool') wrong('a boolean (true or false)');
      return;
    case 'enum':
      if (node.kind !== 'scalar' || node.type !== 'str' || !schema.values.includes(node.text)) {
        out.push({
          pos: node.pos,
          path,
          message: `${prefix}must be one of ${schema.values.map((v) => JSON.stringify(v)).join(', ')}, got ${node.kind === 'scalar' && node.type === 'str' ? JSON.stringify(node.text) : describe(node)}`,
        });
      }
      return;
    case 'integer': {
      const v = node.kind === 'scalar' ? integerOf(node) : undefined;
      if (v === undefined) return wrong('an integer');
      const [lo, hi] = GO_INT_RANGE[schema.go];
      if (v < lo || v > hi) out.push({pos: node.pos, path, message: `${prefix}${v} does not fit the field's type (${schema.go}: ${lo} to ${hi})`});
      return;
    }
    case 'id':
      if (node.kind !== 'scalar' || (node.type !== 'str' && integerOf(node) === undefined)) wrong('a name or a number');
      return;
    case 'array':
      if (node.kind !== 'seq') return wrong('a list');
      node.items.forEach((item, i) => validateNode(item, schema.items, [...path, i], out, opts));
      return;
    case 'map':
      if (node.kind !== 'map') return wrong('a mapping');
      for (const e of node.entries) {
        if (e.keyNode.type !== 'str') {
          out.push({pos: e.keyNode.pos, path: [...path, e.key], message: `${prefix}keys must be strings, got ${describe(e.keyNode)}`});
          continue;
        }
        validateNode(e.value, schema.values, [...path, e.key], out, opts);
      }
      return;
    case 'object': {
      if (node.kind !== 'map') return wrong('a mapping');
      validateObject(node, schema, path, out, opts);
      return;
    }
  }
}

function validateObject(node: YMap, schema: Extract<Schema, {type: 'object'}>, path: Path, out: SchemaProblem[], opts: ValidateOptions): void {
  const at = formatPath(path);
  const where = at === '' ? 'at the top level' : `in ${at}`;
  const known = Object.keys(schema.props);
  for (const e of node.entries) {
    const sub = Object.hasOwn(schema.props, e.key) ? schema.props[e.key] : undefined;
    if (e.keyNode.type !== 'str') {
      out.push({pos: e.keyNode.pos, path: [...path, e.key], message: `unknown field ${e.key} ${where}: keys must be strings, got ${describe(e.keyNode)}`});
      continue;
    }
    if (sub) {
      validateNode(e.value, sub, [...path, e.key], out, opts);
      continue;
    }
    const ignored = Object.hasOwn(schema.ignored ?? {}, e.key) ? schema.ignored![e.key] : undefined;
    if (ignored !== undefined && opts.dropped === 'accept') {
      validateNode(e.value, ignored.schema, [...path, e.key], out, opts);
      continue;
    }
    if (ignored !== undefined) {
      const goName = ignored.goName;
      out.push({
        pos: e.keyNode.pos,
        path: [...path, e.key],
        message:
          `field "${e.key}" ${where} has no effect in LinuxKit: its schema allows it, but its decoder only reads ` +
          `"${goName}" (which the schema forbids), so the value is silently dropped; tskit rejects it instead`,
      });
      continue;
    }
    out.push({pos: e.keyNode.pos, path: [...path, e.key], message: `unknown field "${e.key}" ${where}${suggestion(e.key, known)}`});
  }
  for (const r of schema.required ?? []) {
    if (!node.entries.some((e) => e.key === r)) {
      out.push({pos: node.pos, path, message: `${at === '' ? '' : `${at}: `}missing required field "${r}"`});
    }
  }
}
