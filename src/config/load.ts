// Loading LinuxKit YAML configs: read every source, parse with positions, validate against
// LinuxKit's schema and semantic rules, merge in LinuxKit's order. Every problem in every
// source is collected before anything is thrown, so one run shows all of them.
import {ConfigError, isError, sortProblems, type ConfigProblem} from './problems.ts';
import {mergeConfigs, type ConfigPath, type SourceTree} from './merge.ts';
import {toModel} from './model.ts';
import {mobySchema, validateNode, type SchemaProblem} from './schema.ts';
import {semanticProblems} from './semantic.ts';
import {readSources, type ReadOptions, type SourceText} from './sources.ts';
import {parseYamlTree} from './yaml-tree.ts';
import {printable, TskitError} from '../errors.ts';
import type {MobyConfig, SourcePosition} from './types.ts';

export interface LoadedConfig {
  config: MobyConfig;
  /** Problems that do not stop a build (printed by commands). */
  warnings?: ConfigProblem[];
  /** Source names in merge order (paths, URLs, "<stdin>"). */
  sources: string[];
  /**
   * Where the value at `path` in the merged model was written, e.g. ['onboot', 0, 'binds', 1]
   * gives the file, line and column of that bind (the nearest existing ancestor if absent).
   */
  positionOf(path: ConfigPath): SourcePosition | undefined;
}

export interface ParsedSource {
  tree: SourceTree;
  problems: ConfigProblem[];
  /** False when the YAML could not be parsed at all (no tree to check further). */
  parsed: boolean;
}

/** Problems quote the YAML they are about: control characters in it must not break the line. */
function oneLine(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.map((p) => ({...p, message: printable(p.message)}));
}

/** Parses and schema-checks one source's text. */
export function parseSource(source: SourceText): ParsedSource {
  const {root, problems: treeProblems} = parseYamlTree(source.text);
  const problems: ConfigProblem[] = treeProblems.map((p) => ({file: source.name, ...p.pos, message: p.message, ...(p.warning ? {warning: true} : {})}));
  // duplicate keys or a bad tag still leave a tree worth checking; a syntax error does not
  const parsed = root !== undefined || treeProblems.length === 0;
  if (parsed) {
    if (root === undefined) {
      problems.push({file: source.name, line: 1, col: 1, message: 'the configuration is empty'});
    } else if (root.kind !== 'map' && !(root.kind === 'scalar' && root.type === 'null')) {
      problems.push({
        file: source.name,
        ...root.pos,
        message: 'the configuration must be a mapping of sections (kernel, init, onboot, onshutdown, services, files, volumes, trust)',
      });
    } else if (root.kind === 'map') {
      const schemaProblems: SchemaProblem[] = [];
      validateNode(root, mobySchema, [], schemaProblems);
      for (const p of schemaProblems) problems.push({file: source.name, ...p.pos, message: p.message});
    }
  }
  return {tree: {name: source.name, root: parsed ? root : undefined, config: parsed ? toModel(root) : {}}, problems, parsed};
}

/** Parses, checks and merges sources already read; returns the merged config and every problem. */
export function checkSources(sources: SourceText[]): {loaded: LoadedConfig; problems: ConfigProblem[]} {
  const parsed = sources.map(parseSource);
  const problems = parsed.flatMap((p) => p.problems);
  const merged = mergeConfigs(parsed.map((p) => p.tree));
  if (parsed.every((p) => p.parsed)) {
    problems.push(...semanticProblems(merged.config, merged.positionOf, sources[0]?.name ?? '<config>'));
  }
  const names = sources.map((s) => s.name);
  return {loaded: {config: merged.config, sources: names, positionOf: merged.positionOf}, problems: oneLine(sortProblems(problems, names))};
}

/**
 * Reads, validates and merges config sources (paths, "-" for stdin, https URLs) as LinuxKit's
 * build does with several files. Throws ConfigError listing every problem, or TskitError
 * when a source cannot be read.
 */
export async function loadConfig(sources: string[], opts: ReadOptions = {}): Promise<LoadedConfig> {
  if (sources.length === 0) throw new TskitError('no configuration file given');
  const texts = await readSources(sources, opts);
  const {loaded, problems} = checkSources(texts);
  if (problems.some(isError)) throw new ConfigError(problems.filter(isError));
  return {...loaded, warnings: problems.filter((p) => !isError(p))};
}

export interface ValidateOptions extends ReadOptions {
  /** 'merged' (default): the sources form one config, as in a build; 'separate': each is checked alone. */
  mode?: 'merged' | 'separate';
}

/**
 * Every problem in the sources, without pulling images. A source that cannot be read is a
 * problem with line and column 0.
 */
export async function validateSources(sources: string[], opts: ValidateOptions = {}): Promise<ConfigProblem[]> {
  const groups = opts.mode === 'separate' ? sources.map((s) => [s]) : [sources];
  const problems: ConfigProblem[] = [];
  let stdinUsed = false;
  for (const group of groups) {
    const texts: SourceText[] = [];
    let unreadable = false;
    for (const source of group) {
      try {
        if (source === '-') {
          if (stdinUsed) throw new TskitError('"-" (stdin) can be given only once');
          stdinUsed = true;
        }
        texts.push(...(await readSources([source], opts)));
      } catch (err) {
        if (!(err instanceof TskitError)) throw err;
        unreadable = true;
        const prefix = `${source}: `;
        problems.push({file: source, line: 0, col: 0, message: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message});
      }
    }
    if (unreadable) {
      // still report what is wrong inside the readable ones, but a partial merge would mislead
      for (const t of texts) problems.push(...oneLine(parseSource(t).problems));
      continue;
    }
    problems.push(...checkSources(texts).problems);
  }
  return problems;
}
