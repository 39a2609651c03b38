import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {gunzipSync} from 'node:zlib';
import {describe, expect, it} from 'vitest';
import {parallelGzip} from '../../../src/build/parallel-gzip.ts';

async function gzipAll(input: Buffer, chunk: number, blockSize: number): Promise<Buffer> {
  const source = async function* () {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  const out: Buffer[] = [];
  for await (const piece of parallelGzip({blockSize})(source())) out.push(piece);
  return Buffer.concat(out);
}

describe('parallelGzip', () => {
  const text = Buffer.from('the same words again and again, '.repeat(40_000));
  const mixed = Buffer.concat([text, randomBytes(300_000), Buffer.alloc(200_000), text]);

  it('gives one gzip member that gunzip and GNU gzip read back exactly', async () => {
    for (const input of [Buffer.alloc(0), Buffer.from('x'), text, mixed]) {
      for (const [chunk, block] of [[7, 1024], [65536, 128 * 1024], [1 << 20, 64 * 1024]] as const) {
        const gz = await gzipAll(input, chunk, block);
        expect(gunzipSync(gz).equals(input)).toBe(true);
        expect(execFileSync('gzip', ['-dc'], {input: gz, maxBuffer: 64 << 20}).equals(input)).toBe(true);
      }
    }
  });

  it('is deterministic and compresses about as well as plain gzip', async () => {
    const a = await gzipAll(mixed, 4096, 128 * 1024);
    const b = await gzipAll(mixed, 100_000, 128 * 1024);
    expect(a.equals(b)).toBe(true);
    const plain = execFileSync('gzip', ['-6', '-c'], {input: mixed, maxBuffer: 64 << 20});
    expect(a.length).toBeLessThan(plain.length * 1.02);
  });
});
