// Test material: YAML documents shaped like LinuxKit configurations (its sections and keys,
// scalars of every type yaml.v3 resolves), written in every style YAML has (block and flow,
// quoted and block scalars, tags, anchors and aliases, merge keys, comments, several
// documents), so the fuzzer reaches the parser, the alias bound, the schema and the
// semantic checks rather than stopping at the first syntax error.
import fc from 'fast-check';

const KEYS = ['kernel', 'init', 'onboot', 'onshutdown', 'services', 'files', 'volumes', 'trust', 'image', 'cmdline', 'name', 'capabilities', 'binds', 'mounts', 'command', 'env', 'path', 'contents', 'source', 'mode', 'uid', 'gid', 'directory', 'symlink', 'metadata', 'net', 'pid', 'readonly', 'sysctl', 'rlimits', 'runtime', 'format', 'platforms', 'rootfs', 'bootloader', '<<', 'x'];
const SECTIONS = ['kernel', 'init', 'onboot', 'onshutdown', 'services', 'files', 'volumes', 'trust', 'x'];
const SCALARS = ['linuxkit/init:v1.2.0', 'alpine:3.20@sha256:' + '0'.repeat(64), 'CAP_NET_ADMIN', 'all', '0755', '0o755', '0x1F', '1e3', '.inf', '-.Inf', '.nan', 'true', 'yes', 'on', 'null', '~', '', '2001-12-14t21:59:43.10-05:00', '<<', '!', '-', '? x', ': y', '#', '&a', '*a', '"', "'", '|', '>', '%YAML 1.2', '---', '...', '\t', ' lead', 'trail ', 'a: b', '[x]', '{y: z}', '9223372036854775808', '-9223372036854775809', '0b101', '+12', '1_000', 'ünï', '\u{1F600}'];

interface Ctx {
  anchors: number;
}

type Node = {kind: 'scalar'; text: string; style: number; tag: string; anchor: boolean} | {kind: 'alias'; n: number} | {kind: 'seq' | 'map'; flow: boolean; items: Array<[string, Node]>; anchor: boolean; tag: string};

const scalarNode: fc.Arbitrary<Node> = fc.record({
  kind: fc.constant('scalar' as const),
  text: fc.oneof({arbitrary: fc.constantFrom(...SCALARS), weight: 4}, {arbitrary: fc.string({maxLength: 30}), weight: 2}, {arbitrary: fc.string({unit: 'binary', maxLength: 12}), weight: 1}),
  // 0 plain when safe, 1 double-quoted, 2 single-quoted, 3 plain whatever it holds, 4 block
  style: fc.oneof({arbitrary: fc.constant(0), weight: 10}, {arbitrary: fc.constant(1), weight: 4}, {arbitrary: fc.constant(2), weight: 3}, {arbitrary: fc.constant(3), weight: 1}, {arbitrary: fc.constant(4), weight: 2}),
  tag: fc.oneof({arbitrary: fc.constant(''), weight: 12}, {arbitrary: fc.constantFrom('!!str ', '!!int ', '!!bool ', '!!float ', '!!null ', '!!binary ', '!custom ', '!!timestamp ', '!!map ', '!!seq '), weight: 1}),
  anchor: fc.nat(5).map((n) => n === 0),
});

const node: fc.Arbitrary<Node> = fc.letrec<{node: Node}>((tie) => ({
  node: fc.oneof(
    {depthSize: 'small', withCrossShrink: true},
    {arbitrary: scalarNode, weight: 4},
    {arbitrary: fc.record({kind: fc.constant('alias' as const), n: fc.nat(6)}), weight: 1},
    {
      arbitrary: fc.record({
        kind: fc.constantFrom('seq' as const, 'map' as const),
        flow: fc.nat(3).map((n) => n === 0),
        items: fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('node')), {maxLength: 5}),
        anchor: fc.nat(5).map((n) => n === 0),
        tag: fc.oneof({arbitrary: fc.constant(''), weight: 12}, {arbitrary: fc.constantFrom('!!map ', '!!seq ', '!!set ', '!!omap '), weight: 1}),
      }),
      weight: 2,
    },
  ),
})).node;

function scalarText(text: string, style: number, indent: number): string {
  switch (style) {
    case 0:
      return /^[a-z][\w./:@-]*$/i.test(text) ? text : JSON.stringify(text);
    case 1:
      return JSON.stringify(text);
    case 2:
      return `'${text.replaceAll("'", "''").replaceAll('\n', ' ')}'`;
    case 3:
      return text; // plain, whatever it holds
    default:
      return `|\n${text.split('\n').map((l) => `${' '.repeat(indent + 2)}${l}`).join('\n')}`;
  }
}

/** A node as its properties (anchor, tag), and either text for the rest of the line or block lines. */
function render(n: Node, indent: number, ctx: Ctx, flow: boolean): {props: string; inline?: string; block?: string} {
  const props = 'anchor' in n ? `${n.anchor ? `&a${ctx.anchors++ % 7} ` : ''}${n.tag}` : '';
  if (n.kind === 'alias') return {props: '', inline: `*a${n.n}`};
  if (n.kind === 'scalar') return {props, inline: scalarText(n.text, flow && n.style === 4 ? 1 : n.style, indent)};
  if (n.items.length === 0) return {props, inline: n.kind === 'seq' ? '[]' : '{}'};
  if (flow || n.flow) {
    const item = ([k, v]: [string, Node]) => {
      const r = render(v, 0, ctx, true);
      return `${n.kind === 'map' ? `${k}: ` : ''}${r.props}${r.inline ?? ''}`;
    };
    const inner = n.items.map(item).join(', ');
    return {props, inline: n.kind === 'seq' ? `[${inner}]` : `{${inner}}`};
  }
  const pad = ' '.repeat(indent);
  const lines = n.items.map(([k, v]) => {
    const r = render(v, indent + 2, ctx, false);
    const lead = n.kind === 'seq' ? `${pad}-` : `${pad}${k}:`;
    return r.block !== undefined ? `${lead}${r.props ? ` ${r.props.trimEnd()}` : ''}\n${r.block}` : `${lead} ${r.props}${r.inline}`;
  });
  return {props, block: lines.join('\n')};
}

/** A document: a top-level mapping of LinuxKit's sections (mostly), with comments and extra documents now and then. */
export const yamlDocuments: fc.Arbitrary<Buffer> = fc
  .record({
    sections: fc.array(fc.tuple(fc.oneof({arbitrary: fc.constantFrom(...SECTIONS), weight: 6}, {arbitrary: fc.constantFrom(...KEYS), weight: 1}), node), {minLength: 1, maxLength: 6}),
    comment: fc.boolean(),
    trailer: fc.oneof({arbitrary: fc.constant(''), weight: 8}, {arbitrary: fc.constantFrom('---\nx: 1\n', '...\n', '# end\n', '\t\n', '...\n%TAG ! tag:x,2000:\n---\nx: 1\n'), weight: 1}),
  })
  .map(({sections, comment, trailer}) => {
    const ctx: Ctx = {anchors: 0};
    const body = sections
      .map(([key, value]) => {
        const r = render(value, 2, ctx, false);
        return r.block !== undefined ? `${key}:${r.props ? ` ${r.props.trimEnd()}` : ''}\n${r.block}` : `${key}: ${r.props}${r.inline}`;
      })
      .join('\n');
    return Buffer.from(`${comment ? '# generated\n' : ''}${body}\n${trailer}`);
  });
