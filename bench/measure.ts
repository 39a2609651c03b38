// How the benchmarks time a command: wall seconds, and peak RSS of it and its children from
// GNU time's %M. Shared by bench/run.ts and bench/formats.ts.
import {spawn} from 'node:child_process';

export interface Measured {
  seconds: number;
  maxRssMiB: number;
  stdout: string;
  code: number | null;
}

/** Runs a command under GNU time for wall seconds and peak RSS (of the process and its children). */
export function measure(command: string, args: string[], env: Record<string, string> = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'TSKIT_BENCH_TIME %M', command, ...args], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = /TSKIT_BENCH_TIME (\d+)/.exec(stderr);
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      resolve({seconds, maxRssMiB: rss ? Number(rss[1]) / 1024 : Number.NaN, stdout, code});
    });
  });
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
