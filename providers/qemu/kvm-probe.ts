// Decides whether `--accel auto` uses KVM. /dev/kvm being there and opening is not enough: on
// some hosts (nested, PVM) KVM starts a guest and then runs it so slowly that Linux never
// gets past decompressing itself. So we boot a 512-byte probe (kvm-probe.S) under KVM and
// require it to finish its work within a deadline TCG itself would nearly meet. The answer is
// cached per host boot (/proc/sys/kernel/random/boot_id) in the state dir.
import {spawn} from 'node:child_process';
import {constants} from 'node:fs';
import {access, mkdtemp, readFile, rename, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {ensureDir} from '../../src/run/state-dir.ts';

const probeCode =
  'fa31c08ed88ec08ed0bc007cbaf803b052ee0f0116f87c0f20c06683c8010f22c0ea267c080066b810008ed88ec08ed066baf803b050eebf0010000031c0b9000c0000f3abc705001000000320' +
  '0000c7050020000003300000bf00300000b883000000b9000200008907050000200083c708e2f4b8001000000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20c00d0000' +
  '00800f22c0eaa57c0000180066baf803b04cee48c7c70000000148c7c1000080004831c0f348abb04dee48c7c100c2eb0b48ffc975fbb043eef4ebfd0f1f000000000000000000ffff000000' +
  '9acf00ffff00000092cf00ffff0000009aaf001f00d87c';

/** The probe's boot sector, as kvm-probe.S assembles. */
export function kvmProbeSector(): Buffer {
  const sector = Buffer.alloc(512);
  Buffer.from(probeCode, 'hex').copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export interface KvmProbeResult {
  usable: boolean;
  /** One line: why KVM is or is not used. */
  reason: string;
  /** How long the probe took (0 when cached or not run). */
  ms: number;
  cached: boolean;
}

export interface KvmProbeOptions {
  qemu: string;
  /** Where kvm-probe.json is cached; no caching when absent. */
  stateDir?: string;
  /** From start to the probe's last byte (default 2000 ms; a working KVM needs well under 500). */
  deadlineMs?: number;
  signal?: AbortSignal;
  devKvm?: string;
  /** CPU model for the probe guest (default host, as KVM runs use). */
  cpu?: string;
  /** Tests run the probe guest under tcg to show it reaches its end; callers leave this alone. */
  accel?: 'kvm' | 'tcg';
}

interface CacheEntry {
  bootId: string;
  qemu: string;
  usable: boolean;
  reason: string;
}

export async function probeKvm(options: KvmProbeOptions): Promise<KvmProbeResult> {
  const devKvm = options.devKvm ?? '/dev/kvm';
  if (!(await access(devKvm, constants.R_OK | constants.W_OK).then(() => true, () => false))) {
    return {usable: false, reason: `${devKvm} is missing or not writable`, ms: 0, cached: false};
  }
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const cacheFile = options.stateDir && bootId ? join(options.stateDir, 'kvm-probe.json') : undefined;
  if (cacheFile) {
    const cached = await readFile(cacheFile, 'utf8').then((t) => JSON.parse(t) as CacheEntry, () => undefined);
    if (cached && cached.bootId === bootId && cached.qemu === options.qemu) return {usable: cached.usable, reason: cached.reason, ms: 0, cached: true};
  }
  const result = await runProbe(options.qemu, options.accel ?? 'kvm', options.cpu ?? 'host', options.deadlineMs ?? 2000, options.signal);
  if (cacheFile && !options.signal?.aborted) {
    // A state dir we cannot write costs a probe per run, nothing more.
    const temp = `${cacheFile}.${process.pid}.tmp`;
    try {
      await ensureDir(options.stateDir!);
      await writeFile(temp, JSON.stringify({bootId, qemu: options.qemu, usable: result.usable, reason: result.reason} satisfies CacheEntry));
      await rename(temp, cacheFile);
    } catch {
      await rm(temp, {force: true}).catch(() => {});
    }
  }
  return result;
}

async function runProbe(qemu: string, accel: string, cpu: string, deadlineMs: number, signal?: AbortSignal): Promise<KvmProbeResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tskit-kvm-probe-'));
  const started = Date.now();
  try {
    const disk = join(dir, 'probe.img');
    await writeFile(disk, kvmProbeSector());
    // Same CPU model as a real KVM run: if qemu cannot give the guest the host CPU, KVM is no use.
    const child = spawn(qemu, ['-accel', accel, '-cpu', cpu, '-M', 'pc', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-drive', `file=${disk},format=raw,if=ide`], {stdio: ['ignore', 'pipe', 'pipe']});
    let seen = '';
    let stderr = '';
    const outcome = await new Promise<{usable: boolean; reason: string}>((resolve) => {
      const finish = (usable: boolean, reason: string): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve({usable, reason});
      };
      const onAbort = (): void => finish(false, 'probe interrupted');
      const timer = setTimeout(() => finish(false, `a KVM guest got only to stage "${seen || 'none'}" of R P L M C in ${deadlineMs} ms: KVM is there but far too slow (nested or emulated), using TCG`), deadlineMs);
      signal?.addEventListener('abort', onAbort, {once: true});
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        if (seen.includes('C')) finish(true, `${accel} ran the probe guest in ${Date.now() - started} ms`);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (e) => finish(false, `cannot start ${qemu}: ${e.message}`));
      child.on('exit', (code, sig) => finish(false, `qemu with -accel ${accel} exited (${sig ?? `status ${code}`}): ${lastLine(stderr)}`));
    });
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    return {...outcome, ms: Date.now() - started, cached: false};
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => !l.includes('warning:')).pop() ?? text.trim().split('\n').pop() ?? '';
}
