// Polling EC2's console window: every byte once, in order, whatever the polls see.
import {randomBytes} from 'node:crypto';
import {describe, expect, it} from 'vitest';
import {ConsoleTail} from '../../../providers/aws/console-tail.ts';

/** Simulates a console growing over time and polled at random moments through a window. */
function simulate(stream: Buffer, window: number, maxStep: number, seed: number): {printed: Buffer; gaps: number} {
  let s = seed;
  const random = (): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  const tail = new ConsoleTail(window);
  const out: Buffer[] = [];
  let gaps = 0;
  for (let written = 0; written < stream.length; ) {
    written = Math.min(stream.length, written + Math.floor(random() * maxStep));
    const snapshot = stream.subarray(Math.max(0, written - window), written);
    const {fresh, gap} = tail.push(snapshot);
    if (gap) gaps++;
    out.push(fresh);
    // A poll without news sees the same window again.
    if (random() < 0.3) out.push(tail.push(snapshot).fresh);
  }
  return {printed: Buffer.concat(out), gaps};
}

describe('ConsoleTail', () => {
  it('a console shorter than the window: exact, whatever it contains', () => {
    const tail = new ConsoleTail(1024);
    const text = 'aaaa\naaaa\naaaa\n';
    const parts = [text.slice(0, 3), text.slice(0, 10), text.slice(0, 10), text];
    const got = parts.map((p) => tail.push(Buffer.from(p)).fresh.toString()).join('');
    expect(got).toBe(text);
  });

  it('random output through a sliding window: each byte once and in order', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const stream = randomBytes(200_000);
      const {printed, gaps} = simulate(stream, 4096, 3000, seed);
      expect(gaps).toBe(0);
      expect(printed.equals(stream)).toBe(true);
    }
  });

  it('boot-log-like text with repeated lines through a sliding window', () => {
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) lines.push(i % 7 === 0 ? '[    0.000000] same line again\r\n' : `[ ${(i * 0.0137).toFixed(6)}] line ${i} of the boot\r\n`);
    const stream = Buffer.from(lines.join(''));
    const {printed} = simulate(stream, 64 * 1024, 20_000, 3);
    expect(printed.toString()).toBe(stream.toString());
  });

  it('more output than a window between two polls: a gap is reported, nothing printed twice', () => {
    const tail = new ConsoleTail(100);
    const stream = Buffer.from(Array.from({length: 100}, (_, i) => `line-${i}\n`).join(''));
    const first = tail.push(stream.subarray(0, 100)).fresh;
    const second = tail.push(stream.subarray(stream.length - 100));
    expect(second.gap).toBe(true);
    expect(Buffer.concat([first, second.fresh]).length).toBe(200);
    expect(tail.push(stream.subarray(stream.length - 100)).fresh.length).toBe(0);
  });

  it('an empty answer (no output yet) prints nothing', () => {
    const tail = new ConsoleTail();
    expect(tail.push(Buffer.alloc(0)).fresh.length).toBe(0);
    expect(tail.push(Buffer.from('hello')).fresh.toString()).toBe('hello');
  });
});
