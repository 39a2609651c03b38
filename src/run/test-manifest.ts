// `tskit test FILE`: the manifest, read with src/config's YAML machinery (every node keeps its
// line and column) and checked completely before anything boots, each problem reported as
// `file:line:col: message`. A manifest lists tests; `image`, `provider` and `count` may each be
// a list, and a test runs once for every combination (images × providers × counts):
//
//   defaults:                  # any test field, for every test that does not set it
//     timeout: 2m
//     fail-on: ['Kernel panic']
//     qemu: {mem: 512}
//   tests:
//     - name: hello            # unique; letters, digits, dots, dashes, underscores
//       image: [out/hello, out/hello-debug]   # relative to the manifest's directory (qemu)
//       provider: qemu         # default qemu
//       count: [1, 3]
//       parallel: 3            # min-pass, wait-for, fail-on, timeout, user-data as `tskit run`
//       wait-for: HELLO-OK     # a string or a list (any one matching passes)
//       qemu: {accel: tcg}     # the provider's run options, by flag name
import {readFile} from 'node:fs/promises';
import {dirname, resolve} from 'node:path';
import {ConfigError, sortProblems, type ConfigProblem} from '../config/problems.ts';
import {describe, formatPath, integerOf, validateNode, type Path, type SchemaProblem} from '../config/schema.ts';
import {readSources} from '../config/sources.ts';
import {parseYamlTree, type YMap, type YNode, type YScalar} from '../config/yaml-tree.ts';
import {parseDuration} from './duration.ts';
import {providerEntry, providerNames} from './provider-registry.ts';

/** One run of a manifest: a test for one image, provider and count. */
export interface TestRun {
  /** The test's name, with the combination when a field listed several (`hello[image=out/a,count=3]`). */
  name: string;
  test: string;
  /** Base of its instances' names: the test's name, `.N` added when it has several runs. */
  instanceName: string;
  provider: string;
  /** As written in the manifest (for the table), and as the provider takes it. */
  image: string;
  imageId: string;
  count: number;
  parallel?: number;
  minPass?: number;
  waitFor: RegExp[];
  failOn: RegExp[];
  timeoutMs?: number;
  userData?: string;
  /** The provider's RunOpts, from the `<provider>:` block (defaults merged under the test's). */
  runOptions: unknown;
  /** Where the test starts in the file. */
  line: number;
}

export interface TestManifest {
  file: string;
  runs: TestRun[];
}

const TEST_FIELDS = ['name', 'image', 'provider', 'count', 'parallel', 'min-pass', 'wait-for', 'fail-on', 'timeout', 'user-data'];

export async function loadTestManifest(file: string): Promise<TestManifest> {
  const [source] = await readSources([file]);
  const name = source!.name;
  const problems: ConfigProblem[] = [];
  const report = (node: {pos: {line: number; col: number}}, message: string): void => {
    problems.push({file: name, line: node.pos.line, col: node.pos.col, message});
  };
  const {root, problems: yamlProblems} = parseYamlTree(source!.text);
  for (const p of yamlProblems) problems.push({file: name, ...p.pos, message: p.message, ...(p.warning ? {warning: true} : {})});
  const fail = (): never => {
    throw new ConfigError(sortProblems(problems.filter((p) => !p.warning), [name]));
  };
  if (!root) {
    if (problems.length === 0) problems.push({file: name, line: 1, col: 1, message: 'the manifest is empty: it needs a `tests:` list'});
    fail();
  }
  if (root!.kind !== 'map') {
    report(root!, `the manifest must be a mapping with a \`tests:\` list, got ${describe(root!)}`);
    fail();
  }
  const top = root as YMap;
  const baseDir = /^[a-z]+:\/\//i.test(file) || file === '-' ? process.cwd() : dirname(resolve(file));
  const known = new Set([...TEST_FIELDS, ...providerNames()]);

  for (const e of top.entries) {
    if (!['tests', 'defaults', 'version'].includes(e.key)) report(e.keyNode, `unknown field "${e.key}" at the top level (expected tests, defaults, version)`);
  }
  const version = field(top, 'version');
  if (version && !(version.kind === 'scalar' && integerOf(version) === 1n)) report(version, `version: only 1 is known, got ${describe(version)}`);
  const defaults = field(top, 'defaults');
  if (defaults && defaults.kind !== 'map') report(defaults, `defaults: expected a mapping, got ${describe(defaults)}`);
  const tests = field(top, 'tests');
  if (!tests) report(top, 'the manifest needs a `tests:` list');
  else if (tests.kind !== 'seq' || tests.items.length === 0) report(tests, `tests: expected a non-empty list, got ${describe(tests)}`);
  if (problems.some((p) => !p.warning)) fail();

  const defaultsMap = defaults?.kind === 'map' ? defaults : undefined;
  if (defaultsMap) {
    for (const e of defaultsMap.entries) {
      if (e.key === 'name') report(e.keyNode, 'defaults: a name cannot be a default');
      else if (!known.has(e.key)) report(e.keyNode, `defaults: unknown field "${e.key}" (expected ${[...known].join(', ')})`);
    }
  }

  const runs: TestRun[] = [];
  const names = new Map<string, number>();
  for (const [i, item] of (tests as {items: YNode[]}).items.entries()) {
    const path: Path = ['tests', i];
    if (item.kind !== 'map') {
      report(item, `${formatPath(path)}: expected a mapping, got ${describe(item)}`);
      continue;
    }
    for (const e of item.entries) if (!known.has(e.key)) report(e.keyNode, `${formatPath([...path, e.key])}: unknown field (expected ${[...known].join(', ')})`);
    const get = (key: string): {node: YNode; path: Path} | undefined => {
      const own = field(item, key);
      if (own) return {node: own, path: [...path, key]};
      const inherited = defaultsMap ? field(defaultsMap, key) : undefined;
      return inherited ? {node: inherited, path: ['defaults', key]} : undefined;
    };

    const testName = scalarText(get('name'), report);
    if (testName === undefined) report(item, `${formatPath(path)}: a test needs a name`);
    else if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(testName)) report(field(item, 'name')!, `${formatPath([...path, 'name'])}: "${testName}" may hold only letters, digits, dots, dashes and underscores`);
    else if (names.has(testName)) report(field(item, 'name')!, `${formatPath([...path, 'name'])}: "${testName}" is already the name of the test at line ${names.get(testName)}`);
    else names.set(testName, item.pos.line);

    const images = textList(get('image'), report, {required: `${formatPath(path)}: a test needs an image`, at: item});
    const providers = textList(get('provider'), report) ?? ['qemu'];
    for (const [j, p] of providers.entries()) {
      if (!providerNames().includes(p)) report(listNode(get('provider')!.node, j), `provider: unknown provider "${p}" (known: ${providerNames().join(', ')})`);
    }
    const counts = intList(get('count'), report, 1) ?? [1];
    const parallel = intList(get('parallel'), report, 1, true)?.[0];
    const minPass = intList(get('min-pass'), report, 0, true)?.[0];
    const minPassNode = get('min-pass');
    if (minPass !== undefined && counts.some((c) => minPass > c)) report(minPassNode!.node, `min-pass: ${minPass} is more than the count (${Math.min(...counts)})`);
    const waitFor = regexList(get('wait-for'), report);
    const failOn = regexList(get('fail-on'), report);
    const timeoutField = get('timeout');
    let timeoutMs: number | undefined;
    const timeoutText = scalarText(timeoutField, report);
    if (timeoutText !== undefined) {
      try {
        timeoutMs = parseDuration(timeoutText, 'timeout');
      } catch (error) {
        report(timeoutField!.node, (error as Error).message);
      }
    }
    let userData: string | undefined;
    const userDataField = get('user-data');
    const userDataPath = scalarText(userDataField, report);
    if (userDataPath !== undefined) {
      userData = await readFile(resolve(baseDir, userDataPath), 'utf8').catch((error: Error) => {
        report(userDataField!.node, `user-data: ${error.message}`);
        return undefined;
      });
    }

    // Provider blocks: the defaults' block, then the test's over it, key by key.
    const blocks = new Map<string, Record<string, unknown>>();
    for (const p of providerNames()) {
      const merged: Record<string, unknown> = {};
      for (const source of [defaultsMap ? field(defaultsMap, p) : undefined, field(item, p)]) {
        if (!source) continue;
        const schemaProblems: SchemaProblem[] = [];
        validateNode(source, providerEntry(p).manifestOptions, [p], schemaProblems);
        for (const sp of schemaProblems) problems.push({file: name, ...sp.pos, message: sp.message});
        if (source.kind === 'map' && schemaProblems.length === 0) for (const e of source.entries) merged[e.key] = plain(e.value);
      }
      blocks.set(p, merged);
    }
    if (testName === undefined || !images) continue;

    let combination = 0;
    const varying = [images.length > 1 ? 'image' : '', providers.length > 1 ? 'provider' : '', counts.length > 1 ? 'count' : ''].filter(Boolean);
    for (const image of images) {
      for (const provider of providers) {
        if (!providerNames().includes(provider)) continue;
        const entry = providerEntry(provider);
        let runOptions: unknown;
        try {
          runOptions = await entry.runOptions(blocks.get(provider) ?? {});
        } catch (error) {
          report(field(item, provider) ?? (defaultsMap && field(defaultsMap, provider)) ?? item, (error as Error).message);
          continue;
        }
        for (const count of counts) {
          const combo = {image, provider, count: String(count)} as Record<string, string>;
          combination++;
          runs.push({
            instanceName: varying.length ? `${testName}.${combination}` : testName,
            name: varying.length ? `${testName}[${varying.map((v) => `${v}=${combo[v]}`).join(',')}]` : testName,
            test: testName,
            provider,
            image,
            imageId: entry.imageId(image, baseDir),
            count,
            ...(parallel === undefined ? {} : {parallel}),
            ...(minPass === undefined ? {} : {minPass}),
            waitFor,
            failOn,
            ...(timeoutMs === undefined ? {} : {timeoutMs}),
            ...(userData === undefined ? {} : {userData}),
            runOptions,
            line: item.pos.line,
          });
        }
      }
    }
  }
  if (problems.some((p) => !p.warning)) fail();
  return {file: name, runs};
}

function field(map: YMap, key: string): YNode | undefined {
  return map.entries.find((e) => e.key === key)?.value;
}

function listNode(node: YNode, index: number): YNode {
  return node.kind === 'seq' ? (node.items[index] ?? node) : node;
}

type Report = (node: {pos: {line: number; col: number}}, message: string) => void;

/** A scalar written as text (a number or boolean is taken as written: `timeout: 90`). */
function scalarText(f: {node: YNode; path: Path} | undefined, report: Report): string | undefined {
  if (!f) return undefined;
  if (f.node.kind !== 'scalar' || f.node.type === 'null') {
    report(f.node, `${formatPath(f.path)}: expected a string, got ${describe(f.node)}`);
    return undefined;
  }
  return f.node.text;
}

/** A string or a list of strings. */
function textList(f: {node: YNode; path: Path} | undefined, report: Report, need?: {required: string; at: YNode}): string[] | undefined {
  if (!f) {
    if (need) report(need.at, need.required);
    return undefined;
  }
  const items = f.node.kind === 'seq' ? f.node.items : [f.node];
  if (items.length === 0) {
    report(f.node, `${formatPath(f.path)}: the list is empty`);
    return undefined;
  }
  const out: string[] = [];
  for (const [i, n] of items.entries()) {
    if (n.kind !== 'scalar' || n.type !== 'str' || n.text === '') {
      report(n, `${formatPath(f.node.kind === 'seq' ? [...f.path, i] : f.path)}: expected a string, got ${describe(n)}`);
      continue;
    }
    out.push(n.text);
  }
  return out.length === items.length ? out : undefined;
}

/** An integer or a list of them (just one with `single`), each at least `min`. */
function intList(f: {node: YNode; path: Path} | undefined, report: Report, min: number, single = false): number[] | undefined {
  if (!f) return undefined;
  if (single && f.node.kind === 'seq') {
    report(f.node, `${formatPath(f.path)}: expected a whole number, got a list`);
    return undefined;
  }
  const items = f.node.kind === 'seq' ? f.node.items : [f.node];
  const out: number[] = [];
  for (const [i, n] of items.entries()) {
    const v = n.kind === 'scalar' ? integerOf(n as YScalar) : undefined;
    const at = formatPath(f.node.kind === 'seq' ? [...f.path, i] : f.path);
    if (v === undefined) report(n, `${at}: expected a whole number, got ${describe(n)}`);
    else if (v < BigInt(min) || v > 10_000n) report(n, `${at}: ${v} is out of range (${min} to 10000)`);
    else out.push(Number(v));
  }
  return out.length === items.length && out.length > 0 ? out : undefined;
}

function regexList(f: {node: YNode; path: Path} | undefined, report: Report): RegExp[] {
  if (!f) return [];
  const items = f.node.kind === 'seq' ? f.node.items : [f.node];
  const out: RegExp[] = [];
  for (const [i, n] of items.entries()) {
    const at = formatPath(f.node.kind === 'seq' ? [...f.path, i] : f.path);
    if (n.kind !== 'scalar' || n.type === 'null') {
      report(n, `${at}: expected a regular expression, got ${describe(n)}`);
      continue;
    }
    try {
      out.push(new RegExp(n.text));
    } catch (error) {
      report(n, `${at}: "${n.text}" is not a regular expression: ${(error as Error).message}`);
    }
  }
  return out;
}

/** A checked node as plain JSON-like values (integers as numbers). */
function plain(node: YNode): unknown {
  if (node.kind === 'map') return Object.fromEntries(node.entries.map((e) => [e.key, plain(e.value)]));
  if (node.kind === 'seq') return node.items.map(plain);
  if (node.type === 'int') return Number(node.value);
  return node.value;
}
