// Turns Ctrl-C, SIGTERM and SIGHUP into AbortSignals so every command that starts instances
// stops them the same way: the first signal asks for an orderly stop (destroy instances,
// remove temp files, exit 128+n), a second one says "now" (kill without grace), a third
// leaves at once, trusting the process 'exit' hooks providers register for what is left.
import {constants} from 'node:os';

export type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGPIPE';

/** The reason `stop` aborts with. */
export class Interruption extends Error {
  readonly signal: InterruptSignal;
  /** 128 + the signal's number, as shells report a process killed by it: 130, 143, 129, 141. */
  readonly exitCode: number;

  constructor(signal: InterruptSignal) {
    super(`interrupted by ${signal}`);
    this.name = 'Interruption';
    this.signal = signal;
    this.exitCode = exitCodeForSignal(signal);
  }
}

export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

export interface InterruptTrap {
  /** Aborts (reason: Interruption) on the first signal: stop in an orderly way. */
  readonly stop: AbortSignal;
  /** Aborts on the second signal: stop waiting for anything graceful, kill. */
  readonly hurry: AbortSignal;
  /** The first signal received, if any. */
  readonly interruption: Interruption | undefined;
  /** Acts as if `signal` had arrived: for conditions that are not signals here (stdout gone: SIGPIPE). */
  raise(signal: InterruptSignal): void;
  /** Removes the handlers; signals get their default behaviour back. */
  dispose(): void;
}

export interface TrapOptions {
  signals?: readonly InterruptSignal[];
  /** Called on the third signal, before the process exits (default: process.exit(128+n)). */
  onGiveUp?: (interruption: Interruption) => void;
}

export function trapInterrupts(options: TrapOptions = {}): InterruptTrap {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const stop = new AbortController();
  const hurry = new AbortController();
  let first: Interruption | undefined;
  let count = 0;
  const handler = (signal: NodeJS.Signals): void => {
    count++;
    const interruption = new Interruption(signal as InterruptSignal);
    if (count === 1) {
      first = interruption;
      stop.abort(interruption);
    } else if (count === 2) {
      hurry.abort(interruption);
    } else {
      (options.onGiveUp ?? ((i) => process.exit(first?.exitCode ?? i.exitCode)))(interruption);
    }
  };
  for (const signal of signals) process.on(signal, handler);
  return {
    stop: stop.signal,
    hurry: hurry.signal,
    get interruption() {
      return first;
    },
    raise(signal) {
      handler(signal);
    },
    dispose() {
      for (const signal of signals) process.off(signal, handler);
    },
  };
}

/** The exit code an aborted signal stands for: 128+n for an Interruption, else 130. */
export function exitCodeForAbort(signal: AbortSignal): number {
  return signal.reason instanceof Interruption ? signal.reason.exitCode : exitCodeForSignal('SIGINT');
}

/** A promise that rejects with the signal's reason when it aborts (never settles otherwise). */
export function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), {once: true});
  });
}

/** Resolves after `ms`, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, {once: true});
  });
}
