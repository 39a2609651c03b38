// One running qemu: started in its own process group (a terminal's Ctrl-C reaches tskit, which
// then stops qemu in order) and, through setpriv, with a parent-death signal, so qemu cannot
// outlive a tskit that was killed outright. Reports how it ended from QMP's SHUTDOWN reason.
import {execFile, spawn, type ChildProcess} from 'node:child_process';
import {accessSync, closeSync, constants, openSync, unlinkSync} from 'node:fs';
import {Socket} from 'node:net';
import {join} from 'node:path';
import type {Readable} from 'node:stream';
import {promisify} from 'node:util';
import type {Emit} from '../../src/events.ts';
import {TskitError} from '../../src/errors.ts';
import type {InstanceEnd} from '../../src/provider.ts';
import {QmpClient} from './qmp.ts';

export interface StartOptions {
  binary: string;
  args: readonly string[];
  emit: Emit;
  signal?: AbortSignal;
  /** How long qemu may take to answer on QMP (default 15 s). */
  startTimeoutMs?: number;
  /** A private directory for the console FIFO (see consolePipe); without it, Node's socketpair. */
  consoleDir?: string;
}

export interface StopOptions {
  /** How long `quit` may take before SIGTERM, and SIGTERM before SIGKILL (default 3000 ms). */
  graceMs?: number;
  /** When aborted: SIGKILL now. */
  hurry?: AbortSignal;
}

const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

export class QemuProcess {
  readonly pid: number;
  /** The guest's serial console (qemu's stdout). */
  readonly console: Readable;
  /** Resolves when qemu has exited. */
  readonly ended: Promise<InstanceEnd>;
  private readonly child: ChildProcess;
  private readonly qmp: QmpClient;
  private shutdownReason: string | undefined;
  private stopRequested = false;
  private exited = false;
  private stderrTail = '';

  private constructor(child: ChildProcess, emit: Emit, console: Readable) {
    this.child = child;
    this.pid = child.pid!;
    this.console = console;
    this.qmp = new QmpClient(child.stdio[3] as unknown as import('node:net').Socket);
    this.qmp.onEvent((event) => {
      if (event.event === 'SHUTDOWN') this.shutdownReason = String(event.data?.reason ?? 'unknown');
      if (event.event === 'GUEST_PANICKED') this.shutdownReason = 'guest-panic';
    });
    child.stderr!.setEncoding('utf8');
    let partial = '';
    child.stderr!.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-4096);
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim()) emit({type: 'log', level: 'debug', message: `qemu: ${line}`});
    });
    this.ended = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.qmp.close();
        resolve(this.describeEnd(code, signal));
      });
    });
  }

  static async start(options: StartOptions): Promise<QemuProcess> {
    const {binary, args, emit, signal} = options;
    const [command, argv] = setprivPath ? [setprivPath, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, [...args]];
    emit({type: 'log', level: 'debug', message: `starting ${[binary, ...args].map(shellQuote).join(' ')}`});
    const pipe = options.consoleDir ? await consolePipe(options.consoleDir) : undefined;
    const child = spawn(command, argv, {stdio: ['pipe', pipe?.writeFd ?? 'pipe', 'pipe', 'pipe'], detached: true});
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    if (pipe) closeSync(pipe.writeFd);
    if (spawned) {
      pipe?.reader.destroy();
      throw new TskitError(`cannot start ${binary}: ${spawned.message}`, {exitCode: 125});
    }
    const vm = new QemuProcess(child, emit, pipe?.reader ?? child.stdout!);
    const timeoutMs = options.startTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        vm.qmp.start(),
        vm.ended.then((end) => Promise.reject(new TskitError(`qemu failed to start: ${end.detail}`, {exitCode: 125}))),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TskitError(`qemu did not answer on QMP within ${timeoutMs} ms`, {exitCode: 125})), timeoutMs))),
        new Promise<never>((_, reject) => {
          onAbort = () => reject(signal!.reason);
          if (signal?.aborted) onAbort();
          else signal?.addEventListener('abort', onAbort, {once: true});
        }),
      ]);
    } catch (error) {
      await vm.stop({graceMs: 0});
      // qemu's own words (bad option, missing file) beat "QMP connection closed".
      if (!(error instanceof TskitError) && !signal?.aborted) throw new TskitError(`qemu failed to start: ${(await vm.ended).detail}`, {exitCode: 125});
      throw error;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    return vm;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Stops qemu: QMP quit, then SIGTERM, then SIGKILL; at once with SIGKILL when hurried. */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.exited) return;
    this.stopRequested = true;
    const grace = options.graceMs ?? 3000;
    const hurry = options.hurry;
    if (grace > 0 && !hurry?.aborted) {
      await withTimeout(this.qmp.execute('quit').catch(() => undefined), grace);
      if (await this.waitExit(grace, hurry)) return;
      this.signal('SIGTERM');
      if (await this.waitExit(grace, hurry)) return;
    }
    this.killNow();
    await this.ended;
  }

  /** SIGKILL without waiting: for process exit hooks, which cannot wait. */
  killNow(): void {
    this.signal('SIGKILL');
  }

  private signal(name: NodeJS.Signals): void {
    if (this.exited) return;
    try {
      process.kill(this.pid, name);
    } catch {
      // Already gone.
    }
  }

  private async waitExit(ms: number, hurry?: AbortSignal): Promise<boolean> {
    if (this.exited) return true;
    let timer: NodeJS.Timeout | undefined;
    let onHurry: (() => void) | undefined;
    const result = await Promise.race([
      this.ended.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        onHurry = () => resolve(false);
        hurry?.addEventListener('abort', onHurry, {once: true});
      }),
    ]);
    clearTimeout(timer);
    if (onHurry) hurry?.removeEventListener('abort', onHurry);
    return result;
  }

  private describeEnd(code: number | null, signal: NodeJS.Signals | null): InstanceEnd {
    const stderr = lastMeaningfulLine(this.stderrTail);
    switch (this.shutdownReason) {
      case 'guest-shutdown':
        return {state: 'poweroff', detail: 'guest powered off'};
      case 'guest-reset':
        return {state: 'reboot', detail: 'guest reset (a reboot, a triple fault, or a panic with panic=N); qemu runs with -no-reboot'};
      case 'guest-panic':
        return {state: 'panic', detail: 'guest panicked (reported by the pvpanic device)'};
      case undefined:
        break;
      default:
        if (this.stopRequested) return {state: 'stopped', detail: 'stopped by tskit'};
        return {state: 'stopped', detail: `qemu stopped (${this.shutdownReason})`};
    }
    // A non-zero status is qemu's own failure even when we were stopping it at the time.
    if (code !== null && code !== 0) return {state: 'error', detail: `qemu exited with status ${code}${stderr ? `: ${stderr}` : ' without saying why'}`};
    if (this.stopRequested) return {state: 'stopped', detail: 'stopped by tskit'};
    if (signal) return {state: 'error', detail: `qemu was killed by ${signal}${stderr ? `: ${stderr}` : ''}`};
    return {state: 'error', detail: `qemu exited with status ${code}${stderr ? `: ${stderr}` : ' without saying why'}`};
  }
}

const execFileP = promisify(execFile);

/**
 * A real pipe (a FIFO, unlinked once both ends are open) for qemu's serial output. Node's
 * 'pipe' stdio is a Unix socketpair, where every one-byte write the emulated UART makes costs
 * a whole socket buffer (~1 KiB of accounting): a reader busy for a moment (several VMs
 * starting) lets a few hundred bytes fill it, qemu's serial gives up after four retries and
 * the guest's bytes are lost (measured: "PREEMPT_DYNAMIC" lost 11 characters). A pipe holds
 * 64 KiB of them.
 */
async function consolePipe(dir: string): Promise<{reader: Socket; writeFd: number} | undefined> {
  const path = join(dir, 'console.fifo');
  try {
    await execFileP('mkfifo', ['-m', '600', path]);
  } catch {
    return undefined;
  }
  try {
    // The read end first and non-blocking, so opening the write end does not wait.
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(path, constants.O_WRONLY);
    return {reader: new Socket({fd: readFd, readable: true, writable: false}), writeFd};
  } finally {
    unlinkSync(path);
  }
}

function lastMeaningfulLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.filter((l) => !/warning:/.test(l)).pop() ?? lines.pop() ?? '';
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
