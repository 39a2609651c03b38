// A small fuzzing harness on fast-check: every input of a target's corpus (test/fuzz/corpus/
// TARGET/) is replayed, then fast-check runs the target for a time budget on inputs its
// grammar makes and on mutations of the corpus. The property is the one the hardening issue
// asks for: a target refuses bad input only with a TskitError (one line, no crash), in
// bounded time and memory. A failing input is written into the corpus, so it is replayed on
// every later run and can be committed.
//
// With TSKIT_FUZZ_GROW=1 (run by hand, for longer: TSKIT_FUZZ_MS) the run is coverage-guided:
// V8's block coverage of src/ is taken after each input, and an input that reached a block
// no earlier one did is saved into the corpus as well, to be mutated further and committed.
import {createHash} from 'node:crypto';
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises';
import {Session} from 'node:inspector/promises';
import {join} from 'node:path';
import {gunzipSync, gzipSync} from 'node:zlib';
import fc from 'fast-check';
import {TskitError} from '../../src/errors.ts';
import {ROOT} from '../support/cli.ts';

export interface FuzzTarget {
  /** Names the corpus directory. */
  name: string;
  /** Corpus files end in this. */
  extension: string;
  /** Runs one input; refusing it is throwing a TskitError. */
  run(input: Buffer): Promise<void>;
  /** Corpus files are gzip'd (FILE.EXTENSION.gz): for big, mostly empty inputs such as disk images. */
  gzipCorpus?: boolean;
}

export interface FuzzOptions {
  /** How long fast-check runs after the corpus replay (default TSKIT_FUZZ_MS, else 7 s). */
  timeMs?: number;
  /** One input may take this long (a hang past it fails). */
  inputLimitMs?: number;
}

export interface FuzzReport {
  corpus: number;
  runs: number;
  refused: number;
  seed: number;
  /** Corpus files written by this run (failures, and new coverage with TSKIT_FUZZ_GROW=1). */
  saved: string[];
  failure?: string;
}

const CORPUS = join(ROOT, 'test', 'fuzz', 'corpus');
const HEAP_LIMIT = 768 * 1024 * 1024;

/** A test timeout that fits the fuzz budget, the corpus replay and a shrink. */
export const fuzzTestTimeout = (): number => 2 * Number(process.env.TSKIT_FUZZ_MS ?? 7_000) + 60_000;

export const corpusDir = (target: FuzzTarget): string => join(CORPUS, target.name);

export async function loadCorpus(target: FuzzTarget): Promise<Array<{name: string; bytes: Buffer}>> {
  const dir = corpusDir(target);
  const suffix = `${target.extension}${target.gzipCorpus ? '.gz' : ''}`;
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(suffix)).sort();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(join(dir, name));
      return {name, bytes: target.gzipCorpus ? gunzipSync(bytes) : bytes};
    }),
  );
}

async function save(target: FuzzTarget, input: Buffer, prefix: string): Promise<string> {
  const name = `${prefix}-${createHash('sha256').update(input).digest('hex').slice(0, 16)}${target.extension}${target.gzipCorpus ? '.gz' : ''}`;
  await mkdir(corpusDir(target), {recursive: true});
  await writeFile(join(corpusDir(target), name), target.gzipCorpus ? gzipSync(input, {level: 9}) : input);
  return name;
}

/** Runs one input; a string says what went wrong (anything but a TskitError, too slow, too much memory). */
export async function runOne(target: FuzzTarget, input: Buffer, limitMs: number): Promise<'ok' | 'refused' | string> {
  const started = performance.now();
  let outcome: 'ok' | 'refused' | string = 'ok';
  try {
    await target.run(input);
  } catch (error) {
    if (error instanceof TskitError) {
      outcome = 'refused';
      if (error.message.includes('\n')) outcome = `a TskitError of more than one line: ${JSON.stringify(error.message.slice(0, 300))}`;
    } else {
      outcome = `threw ${(error as Error)?.name ?? typeof error}: ${String((error as Error)?.stack ?? error).slice(0, 600)}`;
    }
  }
  const ms = performance.now() - started;
  if (ms > limitMs) return `took ${Math.round(ms)} ms (limit ${limitMs} ms)`;
  const used = process.memoryUsage();
  if (used.heapUsed + used.external > HEAP_LIMIT) return `left ${Math.round((used.heapUsed + used.external) / 2 ** 20)} MiB in use`;
  return outcome;
}

/** Byte-level mutations of a corpus input, as a fuzzer makes them. */
function mutations(): fc.Arbitrary<Array<{kind: number; at: number; span: number; value: number; octal: string}>> {
  return fc.array(
    fc.record({
      kind: fc.integer({min: 0, max: 7}),
      at: fc.double({min: 0, max: 1, noNaN: true}),
      span: fc.integer({min: 1, max: 600}),
      value: fc.integer({min: 0, max: 255}),
      octal: fc.constantFrom('0', '777', '77777777777', '99999999999', '1' + '0'.repeat(10), ' 0\0', '\x80\0\0\0\0\0\0\x01\0\0\0\0'),
    }),
    {minLength: 1, maxLength: 6},
  );
}

function mutate(input: Buffer, steps: Array<{kind: number; at: number; span: number; value: number; octal: string}>): Buffer {
  let bytes = Buffer.from(input);
  for (const step of steps) {
    const at = Math.floor(step.at * bytes.length);
    switch (step.kind) {
      case 0: // flip a bit
        if (bytes.length) bytes[Math.min(at, bytes.length - 1)]! ^= 1 << (step.value % 8);
        break;
      case 1: // set a byte
        if (bytes.length) bytes[Math.min(at, bytes.length - 1)] = step.value;
        break;
      case 2: // cut the end off
        bytes = bytes.subarray(0, at);
        break;
      case 3: // repeat a slice
        bytes = Buffer.concat([bytes.subarray(0, at + step.span), bytes.subarray(at, at + step.span), bytes.subarray(at + step.span)]);
        break;
      case 4: // drop a slice
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + step.span)]);
        break;
      case 5: // write a number field (tar sizes and modes are octal text or base-256)
        Buffer.from(step.octal, 'latin1').copy(bytes, Math.max(0, Math.min(at, bytes.length - step.octal.length)));
        break;
      case 6: // insert a run of one byte
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.alloc(step.span % 64, step.value), bytes.subarray(at)]);
        break;
      default: // swap two halves
        bytes = Buffer.concat([bytes.subarray(at), bytes.subarray(0, at)]);
    }
  }
  return bytes;
}

/**
 * V8 block coverage of tskit's own sources (for TSKIT_FUZZ_GROW=1). V8 reports, for each
 * function that ran, the blocks in it that did not (count 0), and resets its counts at
 * each take; a block counts as reached once some input ran its function without it in
 * that list.
 */
class Coverage {
  private readonly session = new Session();
  /** Per function that ran: the blocks no input has reached yet. */
  private readonly unreached = new Map<string, Set<string>>();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.startPreciseCoverage', {callCount: false, detailed: true});
  }

  /** True when the inputs run since the last call reached a function or block no earlier one did. */
  async grew(): Promise<boolean> {
    const {result} = await this.session.post('Profiler.takePreciseCoverage');
    let grew = false;
    for (const script of result) {
      if (!script.url.includes('/src/')) continue;
      for (const fn of script.functions) {
        const [whole, ...blocks] = fn.ranges;
        if (!whole || whole.count === 0) continue;
        const key = `${script.url}:${whole.startOffset}`;
        const missed = new Set(blocks.filter((b) => b.count === 0).map((b) => `${b.startOffset}:${b.endOffset}`));
        const before = this.unreached.get(key);
        if (!before) {
          this.unreached.set(key, missed);
          grew = true;
          continue;
        }
        for (const block of before) {
          if (!missed.has(block)) {
            before.delete(block);
            grew = true;
          }
        }
      }
    }
    return grew;
  }

  async stop(): Promise<void> {
    await this.session.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }
}

/**
 * Replays the corpus, then runs fast-check on `generated` and on mutations of the corpus for
 * the time budget. Returns what happened; `failure` is set (and the input saved) on the
 * first input that breaks the property.
 */
export async function fuzz(target: FuzzTarget, generated: fc.Arbitrary<Buffer>, options: FuzzOptions = {}): Promise<FuzzReport> {
  const timeMs = options.timeMs ?? Number(process.env.TSKIT_FUZZ_MS ?? 7_000);
  const limitMs = options.inputLimitMs ?? (process.env.TSKIT_FUZZ_GROW === '1' ? 10_000 : 2_000); // coverage slows a run several times
  const grow = process.env.TSKIT_FUZZ_GROW === '1';
  const corpus = (await loadCorpus(target)).map((c) => c.bytes);
  const report: FuzzReport = {corpus: corpus.length, runs: 0, refused: 0, seed: Number(process.env.TSKIT_FUZZ_SEED ?? Date.now() % 2 ** 31), saved: []};
  const coverage = grow ? new Coverage() : undefined;
  await coverage?.start();
  try {
    for (const [i, bytes] of corpus.entries()) {
      const outcome = await runOne(target, bytes, limitMs);
      if (outcome !== 'ok' && outcome !== 'refused') {
        report.failure = `corpus input ${(await loadCorpus(target))[i]!.name}: ${outcome}`;
        return report;
      }
    }
    await coverage?.grew();
    if (corpus.length === 0) corpus.push(Buffer.alloc(0));
    // picks from the corpus as it is when the value is made, so inputs saved meanwhile are used too
    const fromCorpus = fc.tuple(fc.nat(), mutations()).map(([i, steps]) => mutate(corpus[i % corpus.length]!, steps));
    const inputs = fc.oneof({arbitrary: generated, weight: 1}, {arbitrary: fromCorpus, weight: 1});
    let failed: string | undefined;
    const details = await fc.check(
      fc.asyncProperty(inputs, async (input) => {
        report.runs++;
        const outcome = await runOne(target, input, limitMs);
        if (outcome === 'refused') report.refused++;
        else if (outcome !== 'ok') {
          failed ??= outcome;
          return false;
        }
        if (coverage && (await coverage.grew())) {
          report.saved.push(await save(target, input, 'cov'));
          corpus.push(input);
        }
        return true;
      }),
      {seed: report.seed, numRuns: Number.MAX_SAFE_INTEGER, plugins: [fc.interruptAfterTimeLimit(timeMs)]},
    );
    if (details.failed && details.counterexample) {
      const [input] = details.counterexample as [Buffer];
      report.saved.push(await save(target, input, 'crash'));
      report.failure = `${failed ?? details.errorInstance} (input saved as ${report.saved.at(-1)}; seed ${report.seed})`;
    }
    return report;
  } finally {
    await coverage?.stop();
  }
}
