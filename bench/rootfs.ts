// Figures for LinuxKit's root filesystem formats and --input-tar (issue 16), each beside the
// reference LinuxKit would use: its mkimage-squashfs / mkimage-erofs containers unpack the
// build's tar and run `mksquashfs DIR OUT` / `mkfs.erofs OUT DIR` (here without Docker: the
// same tools from Debian on the same tar, timed together with the unpacking, which is what
// LinuxKit pays on top of writing the tar). Median of N, warm cache. Prints a table; reports.
//
//   node bench/rootfs.ts [--runs N]
import {mkdir, mkdtemp, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {startFixtureRegistry} from '../test/fixtures/fixture-registry.ts';
import {measure, median, type Measured} from './measure.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'bin', 'run.js');
const {values} = parseArgs({options: {runs: {type: 'string', default: '3'}}});
const RUNS = Number(values.runs);

const fixtures = await startFixtureRegistry(() => {});
const mirror = `localhost:5000=${fixtures.registry.url}`;
const work = await mkdtemp(join(tmpdir(), 'tskit-bench-rootfs-'));
const cache = join(work, 'cache');
const tskit = (args: string[]) => measure(NODE, [BIN, 'build', '--mirror', mirror, ...args], {TSKIT_CACHE: cache, TSKIT_MIRROR: ''});
const repeat = async (make: (i: number) => Promise<Measured>) => {
  const runs: Measured[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await make(i));
  return {seconds: median(runs.map((r) => r.seconds)), rss: Math.max(...runs.map((r) => r.maxRssMiB))};
};
const rows: string[][] = [['what', 'tskit', 'reference', 'size tskit / reference']];
try {
  const yml = join(work, 'hello.yml');
  await measure('sh', ['-c', `sed 's/^files:/files:\\n  - path: etc\\/linuxkit.yml\\n    metadata: yaml/' ${join(ROOT, 'templates/hello.yml')} > ${yml}`]);
  await tskit(['-f', 'tar', '--dir', work, yml]); // warms the cache; hello.tar is the reference's input
  for (const [format, suffix, reference] of [
    ['kernel+squashfs', 'squashfs.img', (dir: string, out: string) => `mksquashfs ${dir} ${out} -noappend -no-progress -quiet`],
    ['kernel+erofs', 'erofs.img', (dir: string, out: string) => `mkfs.erofs --quiet ${out} ${dir}`],
  ] as const) {
    const ours = await repeat((i) => tskit(['-f', format, '--name', `t${i}`, '--dir', join(work, format), yml]));
    const theirs = await repeat((i) => {
      const dir = join(work, `ref-${format}-${i}`);
      return measure('sh', ['-c', `mkdir -p ${dir} && tar --xattrs --xattrs-include='*' --numeric-owner -xpf ${join(work, 'hello.tar')} -C ${dir} && rm -rf ${dir}/boot/* && ${reference(dir, `${dir}.img`)}`]);
    });
    const [a, b] = [(await stat(join(work, format, `t0-${suffix}`))).size, (await stat(join(work, `ref-${format}-0.img`))).size];
    rows.push([`build hello ${format}`, `${ours.seconds.toFixed(2)} s, ${ours.rss.toFixed(0)} MiB`, `tar -x + ${reference('D', 'O').split(' ')[0]} ${theirs.seconds.toFixed(2)} s`, `${(a / 1e6).toFixed(1)} MB / ${(b / 1e6).toFixed(1)} MB`]);
  }
  await mkdir(join(work, 'it'), {recursive: true});
  const fresh = await repeat((i) => tskit(['-f', 'tar', '--name', `f${i}`, '--dir', join(work, 'it'), yml]));
  const reused = await repeat((i) => tskit(['-f', 'tar', '--name', `r${i}`, '--input-tar', join(work, 'hello.tar'), '--dir', join(work, 'it'), yml]));
  rows.push(['build hello tar, warm cache', `${fresh.seconds.toFixed(2)} s, ${fresh.rss.toFixed(0)} MiB`, '', '']);
  rows.push(['the same with --input-tar (all reused)', `${reused.seconds.toFixed(2)} s, ${reused.rss.toFixed(0)} MiB`, '', '']);
} finally {
  await fixtures.stop();
  await rm(work, {recursive: true, force: true});
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
