// `node bench/aws.ts`: `tskit push aws` of a 1 GiB raw disk that is 80% zeros to moto (the
// test peer, on loopback), once per method. Reports request-body bytes that crossed the wire
// (counted by a pass-through proxy), the payload tskit says it sent, wall time, throughput and
// tskit's peak RSS. Not a test: it reports. Needs moto_server (scripts/setup-host.sh).
//
//   node bench/aws.ts [--gib N] [--zero-share 0.8] [--only ebs,import]
import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp, open, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {CreateBucketCommand} from '@aws-sdk/client-s3';
import {startFaultProxy} from '../test/aws-peer/fault-proxy.ts';
import {motoVersion} from '../test/aws-peer/moto.ts';
import {startAwsPeer} from '../test/aws-peer/peer.ts';
import {messageBootSector} from '../test/support/initrd-bootdisk.ts';

const ROOT = join(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'bin', 'run.js');
const BLOCK = 512 * 1024;

const {values} = parseArgs({options: {gib: {type: 'string', default: '1'}, 'zero-share': {type: 'string', default: '0.8'}, only: {type: 'string', default: 'ebs,import'}}});
const SIZE = Number(values.gib) * 1024 ** 3;
const ZERO_SHARE = Number(values['zero-share']);

/** A disk of SIZE bytes: a boot sector, then data in runs of blocks spread evenly, zeros elsewhere (written sparse). */
async function makeDisk(path: string): Promise<number> {
  const blocks = SIZE / BLOCK;
  const dataBlocks = Math.round(blocks * (1 - ZERO_SHARE));
  const file = await open(path, 'w');
  try {
    await file.truncate(SIZE);
    await file.write(messageBootSector('TSKIT-BENCH'), 0, 512, 0);
    // Runs of 8 data blocks (4 MiB), as files sit in a file system, spread over the disk.
    const runs = Math.ceil(dataBlocks / 8);
    const stride = Math.floor(blocks / runs);
    let written = 0;
    for (let r = 0; r < runs && written < dataBlocks; r++) {
      for (let b = 0; b < 8 && written < dataBlocks; b++, written++) {
        const index = r * stride + b + (r === 0 ? 1 : 0);
        await file.write(randomBytes(BLOCK), 0, BLOCK, index * BLOCK);
      }
    }
    return written + 1;
  } finally {
    await file.close();
  }
}

function measure(args: string[], env: Record<string, string | undefined>): Promise<{seconds: number; maxRssMiB: number; stdout: string}> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'TSKIT_BENCH_TIME %M', NODE, BIN, ...args], {env: {...process.env, ...env} as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`tskit ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      const rss = /TSKIT_BENCH_TIME (\d+)/.exec(stderr);
      resolve({seconds: (performance.now() - started) / 1000, maxRssMiB: rss ? Number(rss[1]) / 1024 : NaN, stdout});
    });
  });
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

const peer = await startAwsPeer({boot: false, importStepMs: 50});
const work = await mkdtemp(join(tmpdir(), 'tskit-bench-aws-'));
try {
  await peer.s3.send(new CreateBucketCommand({Bucket: 'tskit-bench'}));
  const disk = join(work, 'bench.raw');
  const nonZero = await makeDisk(disk);
  console.log(`moto ${await motoVersion()}; image ${mib(SIZE)}, ${nonZero} of ${SIZE / BLOCK} blocks non-zero (${((nonZero * BLOCK * 100) / SIZE).toFixed(1)}%)`);
  const rows = [];
  for (const method of values.only!.split(',')) {
    const link = await startFaultProxy({target: peer.endpoint, rate: 0});
    try {
      const args = ['push', 'aws', '--json', '--force', '--method', method, ...(method === 'import' ? ['--bucket', 'tskit-bench'] : []), disk];
      const ran = await measure(args, peer.env({AWS_ENDPOINT_URL: link.url}));
      const events = ran.stdout.trim().split('\n').map((l) => JSON.parse(l) as {type: string; task?: string; time?: string; bytesSent?: number});
      const result = events.at(-1) as {bytesSent: number};
      // Upload phase: until the last upload progress event (the rest: import/completion and registration).
      const times = events.filter((e) => e.time).map((e) => Date.parse(e.time!));
      const uploadEnd = events.filter((e) => e.type === 'progress' && e.task?.startsWith('upload ')).map((e) => Date.parse(e.time!)).at(-1);
      const uploadSeconds = uploadEnd && times.length ? (uploadEnd - times[0]!) / 1000 : NaN;
      rows.push({
        method,
        seconds: Number(ran.seconds.toFixed(2)),
        uploadSeconds: Number(uploadSeconds.toFixed(2)),
        wireBytes: link.stats.bytesIn,
        payloadBytes: result.bytesSent,
        requests: link.stats.requests,
        imageMiBps: Number((SIZE / 1024 ** 2 / ran.seconds).toFixed(1)),
        payloadMiBps: Number((result.bytesSent / 1024 ** 2 / ran.seconds).toFixed(1)),
        peakRssMiB: Number(ran.maxRssMiB.toFixed(0)),
      });
    } finally {
      await link.stop();
    }
  }
  console.log('method  seconds  (upload)  sent on the wire  payload     requests  image MiB/s  payload MiB/s  peak RSS');
  for (const r of rows) console.log(`${r.method.padEnd(7)} ${String(r.seconds).padStart(7)}  ${String(r.uploadSeconds).padStart(8)}  ${mib(r.wireBytes).padStart(16)}  ${mib(r.payloadBytes).padStart(10)}  ${String(r.requests).padStart(8)}  ${String(r.imageMiBps).padStart(11)}  ${String(r.payloadMiBps).padStart(13)}  ${r.peakRssMiB} MiB`);
  console.log(JSON.stringify({size: SIZE, zeroShare: ZERO_SHARE, rows}));
} finally {
  await peer.stop();
  await rm(work, {recursive: true, force: true});
}
