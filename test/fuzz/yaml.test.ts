// Fuzzes the YAML loader (test/fuzz/harness.ts): parsing with positions, the alias and size
// bounds, LinuxKit's schema and semantic checks and the merge. The corpus in
// test/fuzz/corpus/yaml/ is replayed, then documents from the LinuxKit-shaped grammar and
// mutations of the corpus run for a few seconds. Every input must give problems or a
// configuration, never an exception other than a TskitError, in bounded time and memory.
import {describe, expect, it} from 'vitest';
import {checkSources} from '../../src/config/load.ts';
import {renderMetadata} from '../../src/config/metadata.ts';
import {fuzz, fuzzTestTimeout, type FuzzTarget} from './harness.ts';
import {yamlDocuments} from './yaml-grammar.ts';

export const yamlTarget: FuzzTarget = {
  name: 'yaml',
  extension: '.yml',
  async run(input) {
    const text = input.toString('utf8');
    // merged with a second copy of itself, as `tskit build a.yml b.yml` merges
    const {loaded, problems} = checkSources([{name: 'fuzz.yml', text}, {name: 'again.yml', text}]);
    for (const problem of problems) {
      if (!(problem.line >= 0 && problem.col >= 0)) throw new Error(`problem without a position: ${JSON.stringify(problem)}`);
      if (/[\n\r\u2028\u2029]/.test(problem.message)) throw new Error(`a problem of more than one line: ${JSON.stringify(problem.message)}`);
    }
    if (problems.every((p) => p.warning)) {
      renderMetadata(loaded.config, 'json');
      renderMetadata(loaded.config, 'yaml');
    }
  },
};

describe('fuzzing the YAML loader', () => {
  it('gives problems or a configuration for every input, in bounded time and memory', async () => {
    const report = await fuzz(yamlTarget, yamlDocuments);
    console.info(`yaml fuzz: ${report.corpus} corpus inputs, ${report.runs} generated (${report.refused} refused), seed ${report.seed}${report.saved.length ? `, saved ${report.saved.join(', ')}` : ''}`);
    expect(report.failure).toBeUndefined();
    expect(report.runs).toBeGreaterThan(20); // it ran (a loaded machine makes fewer)
  }, fuzzTestTimeout());
});
