import {describe, expect, it} from 'vitest';
import {ConsoleMatcher, compileMarker, stripAnsi, type MarkerHit} from '../../../src/run/markers.ts';

type Kind = 'wait' | 'fail';

function feed(matcher: ConsoleMatcher<Kind>, chunks: readonly string[]): MarkerHit<Kind>[] {
  return chunks.flatMap((c) => matcher.push(c));
}

/** Every way of cutting `text` in two, plus one character at a time. */
function splits(text: string): string[][] {
  const out: string[][] = [[...text]];
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe('stripAnsi', () => {
  it('removes colour, cursor, OSC and two-byte escapes and a trailing CR', () => {
    expect(stripAnsi('\x1b[31mERRO\x1b[0m[0000] \x1b[1;33mwarn\x1b[m\r')).toBe('ERRO[0000] warn');
    expect(stripAnsi('\x1b]0;title\x07text\x1b]2;t\x1b\\more')).toBe('textmore');
    expect(stripAnsi('a\x1b[2Kb\x1b[10;20Hc\x1b7d\x1b8')).toBe('abcd');
    expect(stripAnsi('keep\rmiddle')).toBe('keep\rmiddle');
  });
});

describe('ConsoleMatcher', () => {
  it('finds a marker that straddles chunks, wherever the cut falls', () => {
    const text = 'booting\nall TESTS PASSED here\nafter\n';
    for (const chunks of splits(text)) {
      const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /TESTS PASSED/}]);
      const hits = feed(m, chunks);
      expect(hits, JSON.stringify(chunks)).toHaveLength(1);
      expect(hits[0]).toMatchObject({kind: 'wait', line: 'all TESTS PASSED here', partial: false});
    }
  });

  it('matches through colour codes, also when an escape sequence is cut between chunks', () => {
    const text = 'x\n\x1b[31mERROR\x1b[0m: container failed\r\n';
    for (const chunks of splits(text)) {
      const m = new ConsoleMatcher<Kind>([{kind: 'fail', regex: /^ERROR: container/}]);
      const hits = feed(m, chunks);
      expect(hits, JSON.stringify(chunks)).toHaveLength(1);
      expect(hits[0]!.line).toBe('ERROR: container failed');
    }
  });

  it('tests an unterminated line only on flush, and reports it once when the line ends', () => {
    const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /login:/}]);
    expect(m.push('welcome\nhost login:')).toEqual([]);
    expect(m.hasUntestedTail).toBe(true);
    const hits = m.flush();
    expect(hits).toEqual([expect.objectContaining({kind: 'wait', line: 'host login:', partial: true})]);
    expect(m.hasUntestedTail).toBe(false);
    expect(m.flush()).toEqual([]);
    expect(m.push(' root\n')).toEqual([]);
    // A new line is a new chance.
    expect(m.push('host login:\n')).toHaveLength(1);
  });

  it('does not match half a line for an end-anchored pattern before the line ends', () => {
    const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /^ok$/}]);
    expect(m.push('ok')).toEqual([]);
    expect(m.push('ay\n')).toEqual([]);
    expect(m.push('ok\r\n')).toHaveLength(1);
  });

  it('drops an escape sequence cut off at the end of a flushed tail', () => {
    const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /^READY>$/}]);
    m.push('READY>\x1b[3');
    expect(m.flush()).toEqual([expect.objectContaining({line: 'READY>'})]);
  });

  it('reports hits in line order, and every pattern that matches a line, fail-on first when listed first', () => {
    const m = new ConsoleMatcher<Kind>([
      {kind: 'fail', regex: /FAIL/},
      {kind: 'wait', regex: /DONE/},
    ]);
    expect(feed(m, ['DONE 1\nFAIL 2\n', 'DONE FAIL\n']).map((h) => `${h.kind}:${h.line}`)).toEqual(['wait:DONE 1', 'fail:FAIL 2', 'fail:DONE FAIL', 'wait:DONE FAIL']);
  });

  it('handles long lines, and a marker at the end of a line longer than the cap', () => {
    const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /MARK-END/}], {maxLineLength: 10_000, keepOnOverflow: 100});
    const filler = 'x'.repeat(9_990);
    // The marker straddles the point where the line is cut.
    expect(m.push(filler + 'MARK-')).toEqual([]);
    expect(m.push('END and more\n')).toEqual([expect.objectContaining({kind: 'wait'})]);
    const big = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /needle/}]);
    const line = 'y'.repeat(300_000) + 'needle' + 'z'.repeat(1000);
    const hits: MarkerHit<Kind>[] = [];
    for (let i = 0; i < line.length; i += 4096) hits.push(...big.push(line.slice(i, i + 4096)));
    hits.push(...big.push('\n'));
    expect(hits).toHaveLength(1);
    expect(hits[0]!.line.length).toBeLessThanOrEqual(1000);
  });

  it('treats a global regex as stateless', () => {
    const m = new ConsoleMatcher<Kind>([{kind: 'wait', regex: /a/g}]);
    expect(m.push('a\na\na\n')).toHaveLength(3);
  });

  it('rejects a pattern that is not a regex, naming the flag', () => {
    expect(() => compileMarker('(unclosed', '--wait-for')).toThrow(/--wait-for: "\(unclosed" is not a regular expression/);
    expect(compileMarker('^a.b$', '--wait-for').test('axb')).toBe(true);
  });
});
