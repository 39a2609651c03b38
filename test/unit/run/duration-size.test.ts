import {describe, expect, it} from 'vitest';
import {formatDuration, parseDuration} from '../../../src/run/duration.ts';
import {parseSize, parseSizeMiB} from '../../../src/run/size.ts';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['45', 45_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['1m30s500ms', 90_500],
    [' 2h ', 7_200_000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'abc', '5 m', '10x', 's', '-5s', '1h-30m'])('rejects %j naming the flag', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(/--timeout/);
  });

  it('formats back', () => {
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(500)).toBe('500ms');
  });
});

describe('parseSize', () => {
  it.each([
    ['512', 512 * 2 ** 20],
    ['512M', 512 * 2 ** 20],
    ['1G', 2 ** 30],
    ['1GiB', 2 ** 30],
    ['1.5g', 1.5 * 2 ** 30],
    ['2048k', 2 * 2 ** 20],
    ['1T', 2 ** 40],
  ])('%s is %d bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it('gives whole MiB for --mem, rounding up', () => {
    expect(parseSizeMiB('2G')).toBe(2048);
    expect(parseSizeMiB('1500k')).toBe(2);
  });

  it.each(['', 'lots', '0', '1X', '-1G'])('rejects %j', (text) => expect(() => parseSize(text, '--mem')).toThrow(/--mem/));
});
