// Hostile YAML against the loader: alias expansion ("billion laughs"), documents too big or
// too deeply nested for the parser. Each is refused with file:line:col in bounded time and
// memory, in process (parseYamlTree, validateSources) and through the CLI (validate, build).
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {validateSources} from '../../../src/config/load.ts';
import {MAX_YAML_DEPTH, MAX_YAML_NODES, parseYamlTree} from '../../../src/config/yaml-tree.ts';
import {runBounded} from '../../support/bounded-run.ts';
import {ensureBuilt} from '../../support/cli.ts';

/** The classic: ten lists of ten aliases to the list before, nine deep (10^9 strings); 713 bytes. */
function billionLaughs(): string {
  const lines = [`lol0: &lol0 "lol"`];
  for (let i = 1; i <= 9; i++) lines.push(`lol${i}: &lol${i} [${Array.from({length: 10}, () => `*lol${i - 1}`).join(',')}]`);
  return `${lines.join('\n')}\n`;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-yaml-limits-'));
});
afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true});
});

describe('alias expansion', () => {
  it('refuses a billion laughs in milliseconds, at the alias being expanded', () => {
    const text = billionLaughs();
    expect(text.length).toBeLessThan(800);
    const started = performance.now();
    const {root, problems} = parseYamlTree(text);
    expect(performance.now() - started).toBeLessThan(5_000); // 118 s and a V8 crash before (a loaded 2-core machine took 0.6 s)
    expect(root).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/expands aliases too much .* yaml\.v3, which LinuxKit uses, refuses it too/);
    // the alias expanded at the top when the bound was passed: on one of the lolN lines
    expect(problems[0]!.pos.line).toBeGreaterThan(1);
    expect(text.split('\n')[problems[0]!.pos.line - 1]!.slice(problems[0]!.pos.col - 1)).toMatch(/^\*lol\d/);
  });

  it('still expands the aliases real configurations use', () => {
    const text = 'x: &caps [CAP_NET_ADMIN, CAP_SYS_ADMIN]\nonboot:\n  - name: a\n    capabilities: *caps\n  - name: b\n    capabilities: *caps\n';
    const {root, problems} = parseYamlTree(text);
    expect(problems).toEqual([]);
    expect(root?.kind).toBe('map');
  });

  it('allows what yaml.v3 allows: a thousand nodes, most of them aliased', () => {
    const text = `base: &b [${Array.from({length: 50}, (_, i) => `v${i}`).join(', ')}]\nuse: [${Array.from({length: 18}, () => '*b').join(', ')}]\n`;
    expect(parseYamlTree(text).problems).toEqual([]);
  });
});

describe('size and depth', () => {
  it(`refuses more than ${MAX_YAML_NODES} nodes before parsing, naming where`, () => {
    const text = `a: [${'x,'.repeat(4_000_000)}x]\n`; // 8 MB: a minute and 4 GB in the parser
    const started = performance.now();
    const {problems} = parseYamlTree(text);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(problems).toEqual([{pos: {line: 1, col: 2 * MAX_YAML_NODES + 1}, message: expect.stringMatching(/more than 50000 YAML nodes/)}]);
  });

  it(`refuses collections nested more than ${MAX_YAML_DEPTH} deep, flow or block, without overflowing the stack`, () => {
    const flow = `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
    const refused = parseYamlTree(flow).problems;
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({pos: {line: 1, col: 4 + MAX_YAML_DEPTH}, message: expect.stringMatching(/nested more than 200 deep/)});
    const block = Array.from({length: 400}, (_, i) => `${' '.repeat(i)}- `).join('\n') + 'x\n';
    expect(parseYamlTree(block).problems).toEqual([expect.objectContaining({message: expect.stringMatching(/nested more than 200 deep/)})]);
    const fine = `a: ${'['.repeat(50)}${']'.repeat(50)}\n`;
    expect(parseYamlTree(fine).problems).toEqual([]);
  });

  it('reports them as file:line:col problems of validate', async () => {
    const path = join(work, 'laughs.yml');
    await writeFile(path, billionLaughs());
    const problems = await validateSources([path]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({file: path, message: expect.stringMatching(/expands aliases too much/)});
  });
});

describe('the CLI on a billion laughs', () => {
  it('tskit validate and tskit build refuse it at once, in little memory', async () => {
    await ensureBuilt();
    const path = join(work, 'laughs-cli.yml');
    await writeFile(path, billionLaughs());
    for (const args of [['validate', path], ['build', '--dir', join(work, 'out'), path]]) {
      const ran = await runBounded(args, {killAfterMs: 60_000});
      expect(ran.code, ran.stderr).toBe(1);
      expect(`${ran.stdout}${ran.stderr}`).toMatch(new RegExp(`${path.replaceAll('.', '\\.')}:\\d+:\\d+: the document expands aliases too much`));
      expect(ran.ms).toBeLessThan(10_000); // tskit's start-up on a loaded machine is most of it
      expect(ran.rssMiB).toBeLessThan(250); // 4.3 GB once
    }
  });
});
