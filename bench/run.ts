// `npm run bench`: figures for tskit's speed and memory targets, each measured in the same run
// as the reference it is compared with, printed as a table and written to bench/results.json.
// Not a test: nothing here passes or fails, it reports.
//
//   node bench/run.ts [--runs N] [--big-gib N] [--only startup,build,big,boot,formats,cluster]
// (cluster, bench/cluster.ts, takes minutes: it runs only when --only names it)
import {spawn} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {createWriteStream} from 'node:fs';
import {mkdir, mkdtemp, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {pipeline} from 'node:stream/promises';
import {Readable} from 'node:stream';
import {parseArgs} from 'node:util';
import {writeTar} from '../src/build/tar/writer.ts';
import {benchCluster, clusterTable} from './cluster.ts';
import {startFixtureRegistry} from '../test/fixtures/fixture-registry.ts';
import {formatsTable, runFormatsBench} from './formats.ts';
import {measure, median, type Measured} from './measure.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'bin', 'run.js');

const {values} = parseArgs({
  options: {
    runs: {type: 'string', default: '5'},
    'big-gib': {type: 'string', default: '2'},
    only: {type: 'string', default: 'startup,build,big,boot,formats'},
  },
});
const RUNS = Number(values.runs);
const BIG_GIB = Number(values['big-gib']);
const ONLY = new Set(values.only!.split(','));

async function repeat(n: number, make: (i: number) => Promise<Measured>): Promise<{seconds: number; maxRssMiB: number; runs: number[]}> {
  const runs: Measured[] = [];
  for (let i = 0; i < n; i++) runs.push(await make(i));
  return {seconds: median(runs.map((r) => r.seconds)), maxRssMiB: Math.max(...runs.map((r) => r.maxRssMiB)), runs: runs.map((r) => Number(r.seconds.toFixed(3)))};
}

/** Boots and reports the seconds from process start to the first console line matching `marker`. */
function bootToMarker(command: string, args: string[], marker: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ${marker} within 120 s`));
    }, 120_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (marker.test(out)) {
        const seconds = (performance.now() - started) / 1000;
        clearTimeout(timer);
        child.kill('SIGTERM');
        child.on('close', () => resolve(seconds));
      }
    });
    child.on('error', reject);
  });
}

/** An OCI layout holding one image whose single uncompressed layer is one `gib` GiB file of incompressible bytes. */
async function writeBigImage(dir: string, gib: number): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), {recursive: true});
  // 1 MiB of random bytes repeated: deflate's 32 KiB window cannot see the repetition
  const block = randomBytes(1 << 20);
  const size = gib * 1024 * (1 << 20);
  const content = (function* () {
    for (let done = 0; done < size; done += block.length) yield block;
  })();
  const entries = [{path: 'data', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0}, {path: 'data/big.bin', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size, content}];
  const hash = createHash('sha256');
  let layerSize = 0;
  const tmp = join(dir, 'layer.tmp');
  await pipeline(
    Readable.from(writeTar(entries)),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        layerSize += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(tmp),
  );
  const layerDigest = hash.digest('hex');
  const {rename} = await import('node:fs/promises');
  await rename(tmp, join(dir, 'blobs', 'sha256', layerDigest));
  const blob = async (value: object) => {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(dir, 'blobs', 'sha256', digest), bytes);
    return {digest: `sha256:${digest}`, size: bytes.length};
  };
  const config = await blob({architecture: 'amd64', os: 'linux', config: {Cmd: ['/bin/true']}, rootfs: {type: 'layers', diff_ids: [`sha256:${layerDigest}`]}});
  const manifest = await blob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize}],
  });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: {'org.opencontainers.image.ref.name': 'bench.local/big:1'}}]}),
  );
}

const results: Record<string, unknown> = {machine: {cpus: (await import('node:os')).cpus().length, node: process.version, date: new Date().toISOString()}};
const rows: string[][] = [];
const row = (...cells: Array<string | number>) => rows.push(cells.map(String));

const work = await mkdtemp(join(tmpdir(), 'tskit-bench-'));
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const fixtures = await startFixtureRegistry(log);
const mirror = `localhost:5000=${fixtures.registry.url}`;
const hello = join(ROOT, 'templates', 'hello.yml');
const tskit = (args: string[], cache: string) => measure(NODE, [BIN, ...args], {TSKIT_CACHE: cache, TSKIT_MIRROR: ''});
/** LinuxKit, when $LINUXKIT names its CLI (v1.8.2 drops non-Hub registries unless a mirror names them). */
const LINUXKIT = process.env.LINUXKIT;
const linuxkitBuild = async (args: string[], cache: string, dir: string) => {
  await mkdir(dir, {recursive: true});
  return measure(LINUXKIT!, ['--mirror', mirror, 'build', '--no-sbom', '--cache', cache, '--dir', dir, ...args]);
};

try {
  if (ONLY.has('startup')) {
    const version = await repeat(7, () => tskit(['--version'], join(work, 'c0')));
    const validate = await repeat(7, () => tskit(['validate', hello], join(work, 'c0')));
    results.startup = {version, validate};
    row('tskit --version', `${(version.seconds * 1000).toFixed(0)} ms`, `${version.maxRssMiB.toFixed(0)} MiB`, 'target < 500 ms');
    row('tskit validate hello.yml', `${(validate.seconds * 1000).toFixed(0)} ms`, `${validate.maxRssMiB.toFixed(0)} MiB`, 'target < 500 ms');
  }

  if (ONLY.has('build')) {
    const cold = await repeat(RUNS, (i) => tskit(['build', '--mirror', mirror, '--dir', join(work, `cold${i}`), '--name', 'hello', hello], join(work, `cold-cache-${i}`)));
    const warmCache = join(work, 'warm-cache');
    await tskit(['build', '--mirror', mirror, '--dir', join(work, 'warm-prime'), '--name', 'hello', hello], warmCache);
    const warm = await repeat(RUNS, (i) => tskit(['build', '--mirror', mirror, '--dir', join(work, `warm${i}`), '--name', 'hello', hello], warmCache));
    const initrd = (await stat(join(work, 'warm0', 'hello-initrd.img'))).size;
    results.build = {cold, warm, initrdBytes: initrd};
    if (LINUXKIT) {
      const lkCold = await repeat(RUNS, (i) => linuxkitBuild(['--format', 'kernel+initrd', '--name', 'hello', hello], join(work, `lk-cold-cache-${i}`), join(work, `lk-cold${i}`)));
      const lkWarmCache = join(work, 'lk-warm-cache');
      await linuxkitBuild(['--format', 'kernel+initrd', '--name', 'hello', hello], lkWarmCache, join(work, 'lk-warm-prime'));
      const lkWarm = await repeat(RUNS, (i) => linuxkitBuild(['--format', 'kernel+initrd', '--name', 'hello', hello], lkWarmCache, join(work, `lk-warm${i}`)));
      results.build = {...(results.build as object), linuxkitCold: lkCold, linuxkitWarm: lkWarm, coldRatio: cold.seconds / lkCold.seconds, warmRatio: warm.seconds / lkWarm.seconds};
      row('build hello kernel+initrd, cold cache', `${cold.seconds.toFixed(2)} s`, `${cold.maxRssMiB.toFixed(0)} MiB`, `linuxkit ${lkCold.seconds.toFixed(2)} s, ${lkCold.maxRssMiB.toFixed(0)} MiB: ratio ${(cold.seconds / lkCold.seconds).toFixed(2)} (goal <= 0.7)`);
      row('build hello kernel+initrd, warm cache', `${warm.seconds.toFixed(2)} s`, `${warm.maxRssMiB.toFixed(0)} MiB`, `linuxkit ${lkWarm.seconds.toFixed(2)} s, ${lkWarm.maxRssMiB.toFixed(0)} MiB: ratio ${(warm.seconds / lkWarm.seconds).toFixed(2)} (goal <= 0.5)`);
    } else {
      row('build hello kernel+initrd, cold cache', `${cold.seconds.toFixed(2)} s`, `${cold.maxRssMiB.toFixed(0)} MiB`, `median of ${RUNS}`);
      row('build hello kernel+initrd, warm cache', `${warm.seconds.toFixed(2)} s`, `${warm.maxRssMiB.toFixed(0)} MiB`, `initrd ${(initrd / 1e6).toFixed(1)} MB`);
    }
  }

  if (ONLY.has('big')) {
    const layout = join(work, 'big-layout');
    log(`writing a ${BIG_GIB} GiB single-layer image`);
    await writeBigImage(layout, BIG_GIB);
    const cache = join(work, 'big-cache');
    await tskit(['cache', 'import', layout], cache);
    await tskit(['cache', 'pull', '--mirror', mirror, 'localhost:5000/tskit/kernel:6.1'], cache);
    const yaml = join(work, 'big.yml');
    await writeFile(yaml, 'kernel:\n  image: localhost:5000/tskit/kernel:6.1\n  cmdline: console=ttyS0\nonboot:\n  - name: big\n    image: bench.local/big:1\n    readonly: true\n');
    if (LINUXKIT) {
      // LinuxKit pulls from a registry: the same image, pushed next to the fixtures
      await measure('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:bench.local/big:1`, `docker://${fixtures.registry.host}/bench/big:1`]);
      const lkYaml = join(work, 'big-lk.yml');
      await writeFile(lkYaml, 'kernel:\n  image: localhost:5000/tskit/kernel:6.1\n  cmdline: console=ttyS0\nonboot:\n  - name: big\n    image: localhost:5000/bench/big:1\n    readonly: true\n');
      const lkCache = join(work, 'big-lk-cache');
      await measure(LINUXKIT, ['--mirror', mirror, 'cache', 'pull', '--cache', lkCache, 'localhost:5000/tskit/kernel:6.1']);
      await measure(LINUXKIT, ['--mirror', mirror, 'cache', 'pull', '--cache', lkCache, 'localhost:5000/bench/big:1']);
      const lkRun = await linuxkitBuild(['--format', 'kernel+initrd', lkYaml], lkCache, join(work, 'big-lk-out'));
      await rm(join(work, 'big-lk-out'), {recursive: true, force: true});
      await rm(lkCache, {recursive: true, force: true});
      results.bigLayerLinuxkit = {kernelInitrd: {seconds: lkRun.seconds, maxRssMiB: lkRun.maxRssMiB}};
    }
    const bytes = BIG_GIB * 2 ** 30;
    const tarRun = await tskit(['build', '--format', 'tar', '--dir', join(work, 'big-tar'), yaml], cache);
    await rm(join(work, 'big-tar'), {recursive: true, force: true});
    const initrdRun = await tskit(['build', '--format', 'kernel+initrd', '--dir', join(work, 'big-initrd'), yaml], cache);
    await rm(join(work, 'big-initrd'), {recursive: true, force: true});
    results.bigLayer = {gib: BIG_GIB, tar: {seconds: tarRun.seconds, maxRssMiB: tarRun.maxRssMiB}, kernelInitrd: {seconds: initrdRun.seconds, maxRssMiB: initrdRun.maxRssMiB}};
    row(`build tar, ${BIG_GIB} GiB layer`, `${tarRun.seconds.toFixed(1)} s (${(bytes / 2 ** 20 / tarRun.seconds).toFixed(0)} MiB/s)`, `${tarRun.maxRssMiB.toFixed(0)} MiB`, 'target: peak RSS well under 300 MB');
    const lk = (results.bigLayerLinuxkit as {kernelInitrd: {seconds: number; maxRssMiB: number}} | undefined)?.kernelInitrd;
    row(
      `build kernel+initrd, ${BIG_GIB} GiB layer`,
      `${initrdRun.seconds.toFixed(1)} s (${(bytes / 2 ** 20 / initrdRun.seconds).toFixed(0)} MiB/s)`,
      `${initrdRun.maxRssMiB.toFixed(0)} MiB`,
      lk ? `linuxkit ${lk.seconds.toFixed(1)} s, ${lk.maxRssMiB.toFixed(0)} MiB: RSS ratio ${(initrdRun.maxRssMiB / lk.maxRssMiB).toFixed(2)} (goal <= 0.25)` : 'incompressible data, gzip on both cores',
    );
    await rm(layout, {recursive: true, force: true});
    await rm(cache, {recursive: true, force: true});
  }

  if (ONLY.has('boot')) {
    const cache = join(work, 'boot-cache');
    await tskit(['build', '--mirror', mirror, '--dir', join(work, 'boot'), '--name', 'hello', hello], cache);
    const prefix = join(work, 'boot', 'hello');
    const {readFile} = await import('node:fs/promises');
    const cmdline = await readFile(`${prefix}-cmdline`, 'utf8');
    const plain: number[] = [];
    const viaTskit: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // the same machine tskit starts (q35, qemu64, virtio RNG and NIC), so the difference is tskit's own
      const machine = ['-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64', '-smp', '1', '-m', '1024', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio'];
      const devices = ['-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0', '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0,romfile='];
      plain.push(await bootToMarker('qemu-system-x86_64', [...machine, ...devices, '-kernel', `${prefix}-kernel`, '-initrd', `${prefix}-initrd.img`, '-append', cmdline], /HELLO-OK/));
      viaTskit.push(await bootToMarker(NODE, [BIN, 'run', 'qemu', '--wait-for', 'HELLO-OK', '--timeout', '120s', prefix], /HELLO-OK/));
    }
    results.boot = {plainQemu: median(plain), tskitRunQemu: median(viaTskit), plainRuns: plain, tskitRuns: viaTskit};
    row('boot hello to HELLO-OK: plain qemu', `${median(plain).toFixed(2)} s`, '', `median of ${RUNS}, TCG`);
    row('boot hello to HELLO-OK: tskit run qemu', `${median(viaTskit).toFixed(2)} s`, '', `+${(median(viaTskit) - median(plain)).toFixed(2)} s over plain qemu`);
  }

  if (ONLY.has('cluster')) {
    const cache = join(work, 'cluster-cache');
    await tskit(['build', '--mirror', mirror, '--dir', join(work, 'cluster'), '--name', 'hello', hello], cache);
    const bench = await benchCluster(join(work, 'cluster', 'hello'), RUNS, [1, 2, 4], log);
    results.cluster = bench;
    for (const r of clusterTable(bench, RUNS)) row(...r);
  }

  if (ONLY.has('formats')) {
    // tskit convert against qemu-img convert per container format (bench/formats.ts)
    const formats = await runFormatsBench({runs: Math.min(RUNS, 3), log});
    results.formats = formats;
    for (const r of formats.rows) {
      const mbps = (seconds: number) => `${((formats.diskGiB * 2 ** 30) / 1e6 / seconds).toFixed(0)} MB/s`;
      row(
        `convert 1 GiB ${r.input} raw to ${r.format}`,
        `${r.tskit.seconds.toFixed(2)} s (${mbps(r.tskit.seconds)})`,
        `${r.tskit.maxRssMiB.toFixed(0)} MiB`,
        r.reference ? `${r.reference.tool}: ${r.reference.seconds.toFixed(2)} s (${mbps(r.reference.seconds)}), ${r.reference.maxRssMiB.toFixed(0)} MiB; ratio ${r.speedup!.toFixed(2)}x` : '',
      );
    }
    const sparse = formats.sparse.rows;
    row(`convert ${formats.sparse.gib} GiB sparse, every format`, `${Math.min(...sparse.map((r) => r.tskit.seconds)).toFixed(1)}-${Math.max(...sparse.map((r) => r.tskit.seconds)).toFixed(1)} s`, `<= ${Math.max(...sparse.map((r) => r.tskit.maxRssMiB)).toFixed(0)} MiB`, 'target: flat, under 200 MB');
    log(`\n${formatsTable(formats)}`);
  }

  results.linuxkit = LINUXKIT
    ? {available: true, path: LINUXKIT}
    : {
        available: false,
        reason:
          'set $LINUXKIT to a linuxkit v1.8.2 CLI to compare; here the Go module proxy refuses github.com/linuxkit/linuxkit/src/cmd/linuxkit (403 "This module version is not available") and github.com is unreachable, so `go install ...@43200ea6342590c6806f808b318d7f3a69b0cdd8` cannot run',
      };
} finally {
  await fixtures.stop();
  await rm(work, {recursive: true, force: true});
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
process.stdout.write(`${line(['measure', 'time', 'peak RSS', 'note'])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
if (!LINUXKIT) process.stdout.write(`linuxkit: not compared: ${(results.linuxkit as {reason: string}).reason}\n`);
await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
