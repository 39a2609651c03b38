// `node bench/formats.ts`: tskit convert against qemu-img convert, per container format, on
// the same 1 GiB raw disk (4 MiB stripes, random bytes and zeros alternating), in the same
// run and interleaved, so machine load hits both alike: wall seconds (median), MB/s of
// virtual disk, peak RSS (GNU time's %M) and the ratio. The disk comes twice: "dense" (the
// zeros written out, so both tools read every byte) and "sparse" (the zeros are holes, which
// qemu-img skips with SEEK_DATA and tskit must read); the compression-bound formats (vmdk,
// gcp) run on the dense one only. Then an 8 GiB sparse disk (64 MiB of data) through every
// format, to show tskit's memory stays flat as the disk grows. Inputs are read once before
// timing (page cache warm). Not a test: it reports.
//
//   node bench/formats.ts [--runs N] [--gib N] [--sparse-gib N] [--only raw,vmdk,...] [--json]
import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, open, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {measure as timed, median} from './measure.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'bin', 'run.js');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface Measured {
  seconds: number;
  maxRssMiB: number;
}

const measure = async (command: string, args: string[]): Promise<Measured> => {
  const {seconds, maxRssMiB} = await timed(command, args);
  return {seconds, maxRssMiB};
};

export interface FormatRow {
  format: string;
  input: 'dense' | 'sparse';
  tskit: Measured & {runs: number[]; outputBytes: number};
  reference?: Measured & {runs: number[]; tool: string; outputBytes: number};
  /** reference seconds / tskit seconds: above 1, tskit is faster. */
  speedup?: number;
}

export interface FormatsResults {
  diskGiB: number;
  runs: number;
  rows: FormatRow[];
  sparse: {gib: number; dataMiB: number; firstReadSeconds: number; rows: Array<{format: string; tskit: Measured; qemu?: Measured}>};
}

/** Formats whose time is compression: their input's holes change nothing, so they run once. */
const COMPRESSED = new Set(['vmdk', 'gcp']);

/** The qemu-img command writing the same format, or another reference tool. */
const REFERENCE: Record<string, {tool: string; args: (input: string, output: string) => [string, string[]]}> = {
  raw: {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'raw', i, o]]},
  vhd: {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', i, o]]},
  'dynamic-vhd': {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', i, o]]},
  vhdx: {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', i, o]]},
  vmdk: {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', i, o]]},
  qcow2: {tool: 'qemu-img', args: (i, o) => ['qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', i, o]]},
  // no qemu-img equivalent: GCE's documented way, a plain member as tskit writes it, gzip -6
  gcp: {tool: 'GNU tar | gzip', args: (i, o) => ['sh', ['-c', `tar --format=oldgnu -C "$(dirname '${i}')" -cf - disk.raw | gzip -6 > '${o}'`]]},
};
export const BENCH_FORMATS = ['raw', 'vhd', 'dynamic-vhd', 'vhdx', 'qcow2', 'vmdk', 'gcp'];

/** Flushes dirty pages, so one run's writeback does not slow the next. */
const sync = () => new Promise<void>((resolve) => spawn('sync').on('close', () => resolve()));

/** A raw disk: `data` bytes of random stripes of `stripe` bytes spread evenly, zeros between (holes unless `dense`). */
async function writeDisk(path: string, size: number, data: number, stripe: number, dense = false): Promise<void> {
  const file = await open(path, 'w');
  const stripes = Math.floor(data / stripe);
  const gap = Math.floor(size / stripes / stripe) * stripe;
  const zeros = Buffer.alloc(stripe);
  for (let i = 0; i < stripes; i++) {
    await file.write(randomBytes(stripe), 0, stripe, i * gap);
    if (dense) for (let at = i * gap + stripe; at < Math.min(size, (i + 1) * gap); at += stripe) await file.write(zeros, 0, Math.min(stripe, size - at), at);
  }
  await file.truncate(size);
  await file.close();
}

async function readThrough(path: string): Promise<void> {
  const file = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(16 * MiB);
  for (let at = 0; ; at += buffer.length) if ((await file.read(buffer, 0, buffer.length, at)).bytesRead === 0) break;
  await file.close();
}

export async function runFormatsBench(options: {runs?: number; gib?: number; sparseGib?: number; only?: string[]; log?: (line: string) => void} = {}): Promise<FormatsResults> {
  const runs = options.runs ?? 3;
  const gib = options.gib ?? 1;
  const sparseGib = options.sparseGib ?? 8;
  const formats = options.only ?? BENCH_FORMATS;
  const log = options.log ?? ((line: string) => process.stderr.write(`[bench formats] ${line}\n`));
  const work = await mkdtemp(join(tmpdir(), 'tskit-bench-formats-'));
  const tskit = (input: string, output: string, format: string) => measure(NODE, [BIN, 'convert', input, output, '--format', format]);
  try {
    // named disk.raw so GNU tar stores the member GCE wants
    await mkdir(join(work, 'in'));
    const input = join(work, 'in', 'disk.raw');
    const rows: FormatRow[] = [];
    for (const kind of ['dense', 'sparse'] as const) {
      log(`writing a ${gib} GiB ${kind} disk: 4 MiB stripes, random bytes and ${kind === 'dense' ? 'zeros' : 'holes'} alternating`);
      await writeDisk(input, gib * GiB, (gib * GiB) / 2, 4 * MiB, kind === 'dense');
      await readThrough(input);
      for (const format of formats) {
        if (kind === 'sparse' && COMPRESSED.has(format)) continue;
        const reference = REFERENCE[format];
        const t: Measured[] = [];
        const r: Measured[] = [];
        let outputBytes = 0;
        let referenceBytes = 0;
        for (let run = 0; run < runs; run++) {
          // alternate who goes first, so neither always inherits the other's writeback
          const order = run % 2 === 0 ? ['tskit', 'reference'] : ['reference', 'tskit'];
          for (const who of order) {
            const output = join(work, `out-${who}`);
            await sync();
            if (who === 'tskit') {
              t.push(await tskit(input, output, format));
              outputBytes = (await stat(output)).size;
            } else if (reference) {
              const [command, args] = reference.args(input, output);
              r.push(await measure(command, args));
              referenceBytes = (await stat(output)).size;
            }
            await rm(output, {force: true});
          }
        }
        const row: FormatRow = {
          format,
          input: kind,
          tskit: {seconds: median(t.map((m) => m.seconds)), maxRssMiB: Math.max(...t.map((m) => m.maxRssMiB)), runs: t.map((m) => Number(m.seconds.toFixed(3))), outputBytes},
        };
        if (reference && r.length > 0) {
          row.reference = {tool: reference.tool, seconds: median(r.map((m) => m.seconds)), maxRssMiB: Math.max(...r.map((m) => m.maxRssMiB)), runs: r.map((m) => Number(m.seconds.toFixed(3))), outputBytes: referenceBytes};
          row.speedup = row.reference.seconds / row.tskit.seconds;
        }
        rows.push(row);
        log(`${kind} ${format}: tskit ${row.tskit.seconds.toFixed(2)} s, ${row.reference?.tool ?? '-'} ${row.reference?.seconds.toFixed(2) ?? '-'} s`);
      }
      await rm(input);
    }

    const sparseInput = join(work, 'in', 'disk.raw');
    const dataMiB = 64;
    log(`writing a ${sparseGib} GiB sparse disk with ${dataMiB} MiB of data`);
    await writeDisk(sparseInput, sparseGib * GiB, dataMiB * MiB, 2 * MiB);
    // what reading the holes through the page cache costs the first time (the kernel fills the
    // cache with zero pages), for comparison: tskit reads such a file with O_DIRECT instead
    const firstRead = performance.now();
    await readThrough(sparseInput);
    const firstReadSeconds = (performance.now() - firstRead) / 1000;
    log(`first read of the ${sparseGib} GiB sparse file: ${firstReadSeconds.toFixed(1)} s`);
    const sparseRows: FormatsResults['sparse']['rows'] = [];
    for (const format of formats) {
      const output = join(work, 'sparse-out');
      await sync();
      const measured = await tskit(sparseInput, output, format);
      await rm(output, {force: true});
      let qemu: Measured | undefined;
      const reference = REFERENCE[format];
      if (reference?.tool === 'qemu-img') {
        await sync();
        const [command, args] = reference.args(sparseInput, output);
        qemu = await measure(command, args);
        await rm(output, {force: true});
      }
      sparseRows.push({format, tskit: measured, ...(qemu ? {qemu} : {})});
      log(`${sparseGib} GiB sparse ${format}: tskit ${measured.seconds.toFixed(2)} s, ${measured.maxRssMiB.toFixed(0)} MiB`);
    }
    return {diskGiB: gib, runs, rows, sparse: {gib: sparseGib, dataMiB, firstReadSeconds, rows: sparseRows}};
  } finally {
    await rm(work, {recursive: true, force: true});
  }
}

/** The results as a text table. */
export function formatsTable(results: FormatsResults): string {
  const mbps = (seconds: number, gib: number) => `${((gib * GiB) / 1e6 / seconds).toFixed(0)} MB/s`;
  const head = ['format', 'input', 'tskit', 'tskit MB/s', 'tskit RSS', 'reference', 'ref MB/s', 'ref RSS', 'speed ratio', 'sizes (tskit / ref)'];
  const rows = results.rows.map((r) => [
    r.format,
    r.input,
    `${r.tskit.seconds.toFixed(2)} s`,
    mbps(r.tskit.seconds, results.diskGiB),
    `${r.tskit.maxRssMiB.toFixed(0)} MiB`,
    r.reference ? `${r.reference.tool} ${r.reference.seconds.toFixed(2)} s` : '-',
    r.reference ? mbps(r.reference.seconds, results.diskGiB) : '-',
    r.reference ? `${r.reference.maxRssMiB.toFixed(0)} MiB` : '-',
    r.speedup ? `${r.speedup.toFixed(2)}x` : '-',
    `${(r.tskit.outputBytes / MiB).toFixed(0)} / ${r.reference ? (r.reference.outputBytes / MiB).toFixed(0) : '-'} MiB`,
  ]);
  const sparseHead = ['format', `${results.sparse.gib} GiB sparse: tskit`, 'tskit RSS', 'qemu-img', 'qemu-img RSS'];
  const sparseRows = results.sparse.rows.map((r) => [r.format, `${r.tskit.seconds.toFixed(2)} s`, `${r.tskit.maxRssMiB.toFixed(0)} MiB`, r.qemu ? `${r.qemu.seconds.toFixed(2)} s` : '-', r.qemu ? `${r.qemu.maxRssMiB.toFixed(0)} MiB` : '-']);
  return `${table(head, rows)}\n(${results.diskGiB} GiB disk, half random; median of ${results.runs} interleaved runs; ratio = reference time / tskit time)\n\n${table(sparseHead, sparseRows)}\n(${results.sparse.dataMiB} MiB of data; one run each; tskit reads a mostly-hole file with O_DIRECT, qemu-img skips holes with SEEK_DATA; one plain buffered read of the file, cold, took ${results.sparse.firstReadSeconds.toFixed(1)} s)\n`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

if (import.meta.main) {
  const {values} = parseArgs({
    options: {
      runs: {type: 'string', default: '3'},
      gib: {type: 'string', default: '1'},
      'sparse-gib': {type: 'string', default: '8'},
      only: {type: 'string'},
      json: {type: 'boolean', default: false},
    },
  });
  const results = await runFormatsBench({runs: Number(values.runs), gib: Number(values.gib), sparseGib: Number(values['sparse-gib']), ...(values.only ? {only: values.only.split(',')} : {})});
  process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : formatsTable(results));
}
