// `node bench/cluster.ts [--runs N] [--sizes 1,2,4]`: wall time from the command's start until
// every VM of a `tskit run qemu --count N` cluster of the hello image printed its marker, next
// to plain qemu (the same machine options tskit uses) booting one VM, and N VMs at once, in
// the same run. The difference is what tskit adds: node and oclif start-up, the run journal,
// the cluster switch and metadata (a second NIC, fw_cfg files, the seed volume), console
// prefixing. Not a test: it reports. Also run by `bench/run.ts --only cluster`.
import {spawn} from 'node:child_process';
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'bin', 'run.js');
const MEM = '512';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts every command at once; seconds from the start until each printed `marker`, the last of them returned. */
function allMarkers(commands: {command: string; args: string[]; env?: Record<string, string>}[], marker: RegExp, expected: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let seen = 0;
    const children = commands.map(({command, args, env}) => spawn(command, args, {stdio: ['ignore', 'pipe', 'ignore'], env: {...process.env, ...env}}));
    const timer = setTimeout(() => {
      for (const c of children) c.kill('SIGKILL');
      reject(new Error(`only ${seen} of ${expected} markers within 300 s`));
    }, 300_000);
    let done = false;
    for (const child of children) {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('latin1');
        const lines = out.split('\n');
        out = lines.pop()!;
        for (const line of lines) if (marker.test(line)) seen++;
        if (seen >= expected && !done) {
          done = true;
          const seconds = (performance.now() - started) / 1000;
          clearTimeout(timer);
          let open = children.length;
          for (const c of children) {
            c.on('close', () => --open === 0 && resolve(seconds));
            c.kill('SIGTERM');
          }
        }
      });
      child.on('error', reject);
    }
  });
}

export interface ClusterBench {
  sizes: number[];
  plainOne: number;
  rows: {size: number; plainParallel: number; tskit: number}[];
}

/** Measures with the kernel+initrd image at `prefix` (…-kernel, -initrd.img, -cmdline). */
export async function benchCluster(prefix: string, runs: number, sizes: number[], log: (line: string) => void = () => {}): Promise<ClusterBench> {
  const work = await mkdtemp(join(tmpdir(), 'tskit-bench-cluster-'));
  await mkdir(join(work, 'tmp'));
  const env = {TSKIT_STATE: join(work, 'state'), TMPDIR: join(work, 'tmp')};
  const cmdline = (await readFile(`${prefix}-cmdline`, 'utf8')).trim();
  // what tskit starts for one VM (providers/qemu/args.ts), less its QMP socket
  const plain = (): {command: string; args: string[]} => ({
    command: 'qemu-system-x86_64',
    args: ['-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64', '-smp', '1', '-m', MEM, '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio', '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0', '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0,romfile=', '-kernel', `${prefix}-kernel`, '-initrd', `${prefix}-initrd.img`, '-append', cmdline],
  });
  const marker = /HELLO-OK/;
  try {
    const one: number[] = [];
    const rows: ClusterBench['rows'] = [];
    for (let i = 0; i < runs; i++) one.push(await allMarkers([plain()], marker, 1));
    log(`plain qemu, one VM: ${one.map((s) => s.toFixed(2)).join(' ')}`);
    for (const size of sizes) {
      const parallel: number[] = [];
      const viaTskit: number[] = [];
      for (let i = 0; i < runs; i++) {
        parallel.push(await allMarkers(Array.from({length: size}, plain), marker, size));
        viaTskit.push(await allMarkers([{command: NODE, args: [BIN, 'run', 'qemu', '--count', String(size), '--mem', MEM, '--accel', 'tcg', '--wait-for', 'HELLO-OK', '--timeout', '300s', prefix], env}], marker, size));
      }
      log(`${size} VM(s): plain ${parallel.map((s) => s.toFixed(2)).join(' ')}; tskit ${viaTskit.map((s) => s.toFixed(2)).join(' ')}`);
      rows.push({size, plainParallel: median(parallel), tskit: median(viaTskit)});
    }
    return {sizes, plainOne: median(one), rows};
  } finally {
    await rm(work, {recursive: true, force: true});
  }
}

export function clusterTable(bench: ClusterBench, runs: number): string[][] {
  return [
    ['plain qemu, 1 VM, to HELLO-OK', `${bench.plainOne.toFixed(2)} s`, '', `median of ${runs}, TCG, -m ${MEM}`],
    ...bench.rows.flatMap((r) => [
      [`plain qemu, ${r.size} VM(s) at once, to every HELLO-OK`, `${r.plainParallel.toFixed(2)} s`, '', `${(r.plainParallel / bench.plainOne).toFixed(2)}x one VM`],
      [`tskit run qemu --count ${r.size}, to every HELLO-OK`, `${r.tskit.toFixed(2)} s`, '', `${r.tskit >= r.plainParallel ? '+' : ''}${(r.tskit - r.plainParallel).toFixed(2)} s over plain qemu x${r.size}`],
    ]),
  ];
}

if (import.meta.main) {
  const {values} = parseArgs({options: {runs: {type: 'string', default: '3'}, sizes: {type: 'string', default: '1,2,4'}}});
  const runs = Number(values.runs);
  const sizes = values.sizes!.split(',').map(Number);
  const {startFixtureRegistry} = await import('../test/fixtures/fixture-registry.ts');
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const fixtures = await startFixtureRegistry(log);
  const work = await mkdtemp(join(tmpdir(), 'tskit-bench-'));
  try {
    const built = spawn(NODE, [BIN, 'build', '--mirror', `localhost:5000=${fixtures.registry.url}`, '--dir', work, '--name', 'hello', join(ROOT, 'templates', 'hello.yml')], {stdio: 'inherit', env: {...process.env, TSKIT_CACHE: join(work, 'cache')}});
    await new Promise((resolve, reject) => built.on('close', (code) => (code === 0 ? resolve(code) : reject(new Error(`build exited ${code}`)))));
    const bench = await benchCluster(join(work, 'hello'), runs, sizes, log);
    const rows = clusterTable(bench, runs);
    const widths = [0, 1, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) process.stdout.write(`${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[3]}\n`);
  } finally {
    await fixtures.stop();
    await rm(work, {recursive: true, force: true});
  }
}
