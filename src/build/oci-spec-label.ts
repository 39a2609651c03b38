// An image's `org.mobyproject.config` label, read as LinuxKit's NewImage reads it: YAML (JSON is
// YAML) holding the image-entry fields except name and image, validated against the same
// schema. Like LinuxKit, fields its decoder drops (see config/schema.ts) are accepted and dropped.
import {TskitError} from '../errors.ts';
import {convertNode} from '../config/model.ts';
import {formatPath, imageConfigProps, validateNode, type Schema, type SchemaProblem} from '../config/schema.ts';
import {parseYamlTree} from '../config/yaml-tree.ts';
import type {ImageConfigFields} from '../config/types.ts';

export const LABEL = 'org.mobyproject.config';

const labelSchema: Schema = {type: 'object', props: {name: {type: 'string'}, image: {type: 'string'}, ...imageConfigProps}};

/** Parses a label value; throws TskitError (prefixed with `what`) listing every problem. */
export function parseImageLabel(text: string, what: string): ImageConfigFields {
  const fail = (problems: string[]): never => {
    throw new TskitError(`${what}: invalid ${LABEL} label:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  };
  const {root, problems} = parseYamlTree(text);
  if (problems.length > 0) fail(problems.map((p) => `line ${p.pos.line} column ${p.pos.col}: ${p.message}`));
  if (!root || root.kind !== 'map') fail([`the label must hold an object, got: ${text}`]);
  const map = root as Extract<typeof root, {kind: 'map'}>;
  const schemaProblems: SchemaProblem[] = [];
  // LinuxKit validates the label with a dummy name and image put in place of any given
  validateNode({...map, entries: map.entries.filter((e) => e.key !== 'name' && e.key !== 'image')}, labelSchema, [], schemaProblems, {
    dropped: 'accept',
  });
  if (schemaProblems.length > 0) fail(schemaProblems.map((p) => (p.path.length > 0 && !p.message.startsWith(formatPath(p.path)) ? `${formatPath(p.path)}: ${p.message}` : p.message)));
  for (const field of ['name', 'image']) {
    const e = map.entries.find((x) => x.key === field);
    if (e && !(e.value.kind === 'scalar' && (e.value.type === 'null' || (e.value.type === 'str' && e.value.text === '')))) {
      fail([`${field} cannot be set in metadata label`]);
    }
  }
  const fields = convertNode<ImageConfigFields & {name?: string; image?: string}>(map, labelSchema) ?? {};
  delete fields.name;
  delete fields.image;
  return fields;
}
