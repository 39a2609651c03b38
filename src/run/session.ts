// The run loop every `tskit run <provider>` command shares: start instances through a
// Provider, stream their consoles, match markers, decide a verdict per instance, and tear
// everything down however the run ends (marker, guest exit, timeout, Ctrl-C, error).
//
// Verdicts come from the first of: a --fail-on or panic line (1), a --wait-for line (0), the
// instance stopping on its own (poweroff 0, anything else 1, provider failure 125), the
// timeout (124), an interruption (128+n). An instance is destroyed as soon as it has its
// verdict, so a matched marker stops its VM at once.
import type {Emit, Verdict} from '../events.ts';
import {instanceResource, type ImageRef, type Instance, type InstanceEnd, type Provider} from '../provider.ts';
import {formatDuration} from './duration.ts';
import {ExitCode} from './exit-codes.ts';
import {ConsoleMatcher, type MarkerHit} from './markers.ts';
import {exitCodeForAbort} from './signals.ts';

/** The line Linux prints when it panics; the trace that follows ends with `---[ end Kernel panic`. */
export const linuxPanic = /Kernel panic - not syncing/;
const linuxPanicEnd = /---\[ end Kernel panic/;

export interface SessionOptions<RunOpts> {
  provider: Provider<unknown, RunOpts>;
  image: ImageRef;
  runOptions: RunOpts;
  /** Success as soon as any of these matches a console line. */
  waitFor?: readonly RegExp[];
  /** Failure (exit 1) as soon as any of these matches a console line. */
  failOn?: readonly RegExp[];
  /** Lines that mean the guest kernel died (exit 1); default: Linux's panic line. */
  panicOn?: readonly RegExp[];
  /** Counted from the start of the session (instance creation included). */
  timeoutMs?: number;
  emit: Emit;
  /** Raw console bytes as they arrive, for a terminal or a --console-file. */
  onConsole?: (instance: Instance, chunk: Uint8Array) => void;
  /** Abort to stop the run (reason: an Interruption gives exit code 128+n, anything else 130). */
  signal?: AbortSignal;
  /** Abort to make teardown skip graceful stops (a second Ctrl-C). */
  hurry?: AbortSignal;
  /** How long an unterminated console line must stay quiet before every pattern is tried on it. */
  quietMs?: number;
  /** After a panic line, how long to keep streaming the trace if its end line does not come. */
  panicSettleMs?: number;
  /** After the instance stops, how long to wait for the rest of its console. */
  drainMs?: number;
}

export interface InstanceOutcome {
  instance: Instance;
  verdict: Verdict;
  exitCode: number;
  reason: string;
}

export interface SessionResult {
  /** What the command should exit with. */
  exitCode: number;
  /** One line saying why, from the outcome that decided the exit code. */
  reason: string;
  /** Per instance, in the order the provider returned them. */
  outcomes: InstanceOutcome[];
}

type MarkerKind = 'fail-on' | 'panic' | 'panic-end' | 'wait-for';

class SessionTimeout extends Error {
  constructor(ms: number) {
    super(`no verdict after ${formatDuration(ms)}`);
    this.name = 'SessionTimeout';
  }
}

/**
 * Runs `image` on `provider` until every instance has a verdict, destroys every instance,
 * and returns the exit code. Throws only when the provider fails before any instance exists
 * (check or run failing): nothing is left running then.
 */
export async function runSession<RunOpts>(options: SessionOptions<RunOpts>): Promise<SessionResult> {
  const {provider, emit} = options;
  const userStop = options.signal ?? new AbortController().signal;
  if (userStop.aborted) return interruptedBeforeStart(userStop);
  await provider.check(options.runOptions);
  if (userStop.aborted) return interruptedBeforeStart(userStop);

  const timeout = new AbortController();
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(new SessionTimeout(options.timeoutMs!)), options.timeoutMs);
  const runSignal = AbortSignal.any([userStop, timeout.signal]);

  let instances: Instance[];
  try {
    instances = await provider.run(options.image, options.runOptions, emit, runSignal);
  } catch (error) {
    clearTimeout(timer);
    if (userStop.aborted) return interruptedBeforeStart(userStop);
    if (timeout.signal.aborted) return {exitCode: ExitCode.timeout, reason: `${(timeout.signal.reason as Error).message} (still starting)`, outcomes: []};
    throw error;
  }

  const watches = instances.map((instance) => new InstanceWatch(instance, options));
  for (const instance of instances) emit({type: 'instance.created', instance: instance.name, provider: instance.provider, ...(instance.detail ? {detail: instance.detail} : {})});
  const onStop = (): void => {
    for (const w of watches) w.decide('interrupted', exitCodeForAbort(userStop), (userStop.reason as Error | undefined)?.message ?? 'interrupted');
  };
  const onTimeout = (): void => {
    for (const w of watches) w.decide('timeout', ExitCode.timeout, (timeout.signal.reason as Error).message);
  };
  userStop.addEventListener('abort', onStop, {once: true});
  timeout.signal.addEventListener('abort', onTimeout, {once: true});
  if (userStop.aborted) onStop();
  if (timeout.signal.aborted) onTimeout();

  try {
    const outcomes = await Promise.all(watches.map((w) => w.run()));
    const leaked = watches.some((w) => w.destroyFailed);
    if (userStop.aborted) return {exitCode: exitCodeForAbort(userStop), reason: (userStop.reason as Error | undefined)?.message ?? 'interrupted', outcomes};
    const failed = watches.map((w) => w.decidedOutcome!).sort((a, b) => a.order - b.order).find((o) => o.exitCode !== 0);
    if (failed) return {exitCode: failed.exitCode, reason: failed.reason, outcomes};
    if (leaked) return {exitCode: ExitCode.providerError, reason: 'an instance could not be destroyed', outcomes};
    return {exitCode: ExitCode.ok, reason: outcomes[0]?.reason ?? 'no instances', outcomes};
  } finally {
    clearTimeout(timer);
    userStop.removeEventListener('abort', onStop);
    timeout.signal.removeEventListener('abort', onTimeout);
    await Promise.allSettled(watches.map((w) => w.teardown()));
  }
}

function interruptedBeforeStart(signal: AbortSignal): SessionResult {
  return {exitCode: exitCodeForAbort(signal), reason: `${(signal.reason as Error | undefined)?.message ?? 'interrupted'} before the instance started`, outcomes: []};
}

let decisionCounter = 0;

/** Watches one instance: its console, its end, and its teardown. */
class InstanceWatch<RunOpts> {
  decidedOutcome: (InstanceOutcome & {order: number}) | undefined;
  destroyFailed = false;
  private readonly instance: Instance;
  private readonly options: SessionOptions<RunOpts>;
  private readonly matcher: ConsoleMatcher<MarkerKind>;
  private readonly consoleStop = new AbortController();
  private readonly decided: Promise<InstanceOutcome>;
  private resolveDecided!: (outcome: InstanceOutcome) => void;
  private quietTimer: NodeJS.Timeout | undefined;
  private panic: {line: string; timer: NodeJS.Timeout} | undefined;
  private consoleDone: Promise<void> = Promise.resolve();
  /** Decoded console text not yet sent as a console event. */
  private pendingText = '';
  private teardownDone: Promise<void> | undefined;

  constructor(instance: Instance, options: SessionOptions<RunOpts>) {
    this.instance = instance;
    this.options = options;
    this.decided = new Promise((resolve) => (this.resolveDecided = resolve));
    this.matcher = new ConsoleMatcher<MarkerKind>([
      ...(options.failOn ?? []).map((regex) => ({kind: 'fail-on' as const, regex})),
      ...(options.panicOn ?? [linuxPanic]).map((regex) => ({kind: 'panic' as const, regex})),
      {kind: 'panic-end', regex: linuxPanicEnd},
      ...(options.waitFor ?? []).map((regex) => ({kind: 'wait-for' as const, regex})),
    ]);
  }

  async run(): Promise<InstanceOutcome> {
    this.consoleDone = this.readConsole();
    if (this.options.provider.wait) void this.watchEnd();
    else void this.consoleDone.then(() => this.decideByEnd({state: 'poweroff', detail: 'console closed'}));
    const outcome = await this.decided;
    await this.teardown();
    return outcome;
  }

  /** First call wins; later calls (a timeout racing a marker) are ignored. */
  decide(verdict: Verdict, exitCode: number, reason: string): void {
    if (this.decidedOutcome) return;
    this.emitConsole(true);
    this.decidedOutcome = {instance: this.instance, verdict, exitCode, reason, order: decisionCounter++};
    clearTimeout(this.quietTimer);
    if (this.panic) clearTimeout(this.panic.timer);
    this.options.emit({type: 'verdict', instance: this.instance.name, verdict, exitCode, reason});
    const {order: _order, ...outcome} = this.decidedOutcome;
    this.resolveDecided(outcome);
  }

  teardown(): Promise<void> {
    this.teardownDone ??= (async () => {
      clearTimeout(this.quietTimer);
      if (this.panic) clearTimeout(this.panic.timer);
      this.consoleStop.abort();
      const {provider, emit, hurry} = this.options;
      try {
        await provider.destroy(instanceResource(this.instance), hurry ? {hurry} : {});
        emit({type: 'instance.destroyed', instance: this.instance.name, provider: this.instance.provider});
      } catch (error) {
        this.destroyFailed = true;
        emit({type: 'log', level: 'warn', message: `could not destroy ${this.instance.provider} instance ${this.instance.id}: ${(error as Error).message}`});
      }
      // A provider whose console ignores the abort must not hold the run open.
      const settled = new AbortController();
      await Promise.race([this.consoleDone, delay(2000, settled.signal)]);
      settled.abort();
    })();
    return this.teardownDone;
  }

  private async readConsole(): Promise<void> {
    const {provider, onConsole} = this.options;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of provider.console(this.instance, this.consoleStop.signal)) {
        onConsole?.(this.instance, chunk);
        const text = decoder.decode(chunk, {stream: true});
        if (text === '') continue;
        this.pendingText += text;
        // Console events carry whole lines where possible (a serial console arrives a few bytes
        // at a time); an unterminated line goes out after the quiet spell.
        if (text.includes('\n') || this.pendingText.length >= 4096) this.emitConsole(this.pendingText.length >= 4096);
        if (this.decidedOutcome) continue;
        this.handle(this.matcher.push(text));
        this.armQuietTimer();
      }
      this.pendingText += decoder.decode();
      this.emitConsole(true);
      if (!this.decidedOutcome) this.handle(this.matcher.flush());
    } catch (error) {
      this.emitConsole(true);
      if (!this.consoleStop.signal.aborted) this.decide('provider-error', ExitCode.providerError, `console of ${this.instance.name} failed: ${(error as Error).message}`);
    }
  }

  /** Emits the buffered console text: up to its last newline, or all of it. */
  private emitConsole(all: boolean): void {
    const cut = all ? this.pendingText.length : this.pendingText.lastIndexOf('\n') + 1;
    if (cut <= 0) return;
    this.options.emit({type: 'console', instance: this.instance.name, data: this.pendingText.slice(0, cut)});
    this.pendingText = this.pendingText.slice(cut);
  }

  private async watchEnd(): Promise<void> {
    let end: InstanceEnd;
    try {
      end = await this.options.provider.wait!(this.instance, this.consoleStop.signal);
    } catch (error) {
      if (!this.consoleStop.signal.aborted) this.decide('provider-error', ExitCode.providerError, `${this.instance.name}: ${(error as Error).message}`);
      return;
    }
    // What the guest wrote just before it stopped (a marker, a panic trace) is still on its way.
    const drained = new AbortController();
    await Promise.race([this.consoleDone, delay(this.options.drainMs ?? 2000, drained.signal)]);
    drained.abort();
    this.decideByEnd(end);
  }

  private decideByEnd(end: InstanceEnd): void {
    if (this.panic) return this.decide('panic', ExitCode.guestFailed, this.panic.line);
    const waited = (this.options.waitFor ?? []).length > 0;
    switch (end.state) {
      case 'poweroff':
        if (waited) return this.decide('exited', ExitCode.guestFailed, `${end.detail} before any --wait-for pattern appeared`);
        return this.decide('exited', ExitCode.ok, end.detail);
      case 'reboot':
        return this.decide('exited', ExitCode.guestFailed, end.detail);
      case 'panic':
        return this.decide('panic', ExitCode.guestFailed, end.detail);
      case 'stopped':
      case 'error':
        return this.decide('provider-error', ExitCode.providerError, end.detail);
    }
  }

  private handle(hits: MarkerHit<MarkerKind>[]): void {
    const {emit} = this.options;
    for (const hit of hits) {
      if (this.decidedOutcome) return;
      const matched = (): void => emit({type: 'matched', instance: this.instance.name, pattern: hit.regex.source, line: hit.line});
      switch (hit.kind) {
        case 'fail-on':
          matched();
          this.decide('failed-marker', ExitCode.guestFailed, `--fail-on /${hit.regex.source}/ matched: ${hit.line}`);
          break;
        case 'panic':
          if (this.panic) break;
          matched();
          // Keep streaming until the trace ends, so the user sees why it panicked.
          this.panic = {line: hit.line, timer: setTimeout(() => this.decide('panic', ExitCode.guestFailed, hit.line), this.options.panicSettleMs ?? 2000)};
          break;
        case 'panic-end':
          if (this.panic) this.decide('panic', ExitCode.guestFailed, this.panic.line);
          break;
        case 'wait-for':
          if (this.panic) break;
          matched();
          this.decide('matched', ExitCode.ok, `--wait-for /${hit.regex.source}/ matched: ${hit.line}`);
          break;
      }
    }
  }

  private armQuietTimer(): void {
    clearTimeout(this.quietTimer);
    if ((!this.matcher.hasUntestedTail && this.pendingText === '') || this.decidedOutcome) return;
    this.quietTimer = setTimeout(() => {
      this.emitConsole(true);
      this.handle(this.matcher.flush());
    }, this.options.quietMs ?? 100);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, {once: true});
  });
}
