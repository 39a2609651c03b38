// The run loop every `tskit run <provider>` command shares: start instances through a
// Provider (one, or a cluster of --count N sharing a network), stream their consoles, match
// markers, decide a verdict per instance and for the cluster, and tear everything down however
// the run ends (marker, guest exit, timeout, Ctrl-C, error). Every resource is journalled
// (src/run/run-journal.ts) before it is created and forgotten once removed, so `tskit gc` can
// clean up after a tskit that was killed outright.
//
// Verdicts come from the first of: a --fail-on or panic line (1), a --wait-for line (0), the
// instance stopping on its own (poweroff 0, anything else 1, provider failure 125), the
// timeout (124), an interruption (128+n). Instances are destroyed once every instance has its
// verdict (members of a cluster may serve each other after their own marker), the cluster
// network after them.
import type {Emit, Verdict} from '../events.ts';
import {TskitError} from '../errors.ts';
import {instanceResource, type ClusterNetwork, type ImageRef, type Instance, type InstanceEnd, type Provider, type Resource, type RunContext} from '../provider.ts';
import {formatDuration} from './duration.ts';
import {ExitCode} from './exit-codes.ts';
import {ConsoleMatcher, type MarkerHit} from './markers.ts';
import {newRunId} from './run-id.ts';
import {RunJournal} from './run-journal.ts';
import {exitCodeForAbort} from './signals.ts';
import {stateDir as defaultStateDir} from './state-dir.ts';

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
  /** Instances to run as one cluster (default 1). Each gets its index and, where the provider has one, a shared network. */
  count?: number;
  /** At most this many `provider.run` calls at once (default: all). */
  parallel?: number;
  /** The cluster passes when at least this many instances pass (default: all of them). */
  minPass?: number;
  /** Default: a new one (src/run/run-id.ts). */
  runId?: string;
  /** Base of the instances' names (NAME, or NAME-0, NAME-1... in a cluster); default: the provider's choice (qemu: the image's name). */
  name?: string;
  /** Where the run journal goes (default: the tskit state dir). */
  stateDir?: string;
  /** What the journal says started the run ("run qemu"). */
  command?: string;
  /** User data handed to every instance (cloud-init / LinuxKit metadata). */
  userData?: string;
  /** How much of each instance's console (characters) the result keeps for reports (default 64 Ki). */
  consoleTailChars?: number;
}

export interface InstanceOutcome {
  /** 0-based place in the run; instances of one `run` call share their call's index. */
  index: number;
  name: string;
  /** Absent when the instance never came to exist (the provider failed, or the run ended first). */
  instance?: Instance;
  verdict: Verdict;
  exitCode: number;
  reason: string;
  /** From asking the provider for it to its verdict. */
  durationMs: number;
  /** The end of its console until its teardown, as text (escapes kept). */
  consoleTail: string;
  /** The end of its console when its verdict fell (what led to a failure). */
  consoleAtVerdict: string;
}

export interface SessionResult {
  runId: string;
  /** What the command should exit with. */
  exitCode: number;
  /** One line saying why, from the outcome that decided the exit code. */
  reason: string;
  /** Per instance, by index. */
  outcomes: InstanceOutcome[];
  /** Instances asked for, passed, and needed to pass. */
  count: number;
  passed: number;
  minPass: number;
  startedAt: Date;
  durationMs: number;
  /** What could not be removed: still in the journal, for `tskit gc`. */
  leaked: Resource[];
}

type MarkerKind = 'fail-on' | 'panic' | 'panic-end' | 'wait-for';

class SessionTimeout extends Error {
  constructor(ms: number) {
    super(`no verdict after ${formatDuration(ms)}`);
    this.name = 'SessionTimeout';
  }
}

/** One `provider.run` call: the instances it gave, or why it gave none. */
interface Slot {
  index: number;
  name: string;
  watches: InstanceWatch<unknown>[];
  askedAt?: number;
  /** Decided without an instance: the provider failed, or the run stopped before or while starting it. */
  outcome?: InstanceOutcome & {order: number};
}

/**
 * Runs `count` instances of `image` on `provider` until every instance has a verdict, destroys
 * every instance (and the cluster network), and returns the exit code. Every resource is
 * journalled before it is created. With one instance, throws when the provider fails before
 * the instance exists (check or run failing): nothing is left running then.
 */
export async function runSession<RunOpts>(options: SessionOptions<RunOpts>): Promise<SessionResult> {
  const {provider, emit} = options;
  const started = Date.now();
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new TskitError(`--count must be a whole number of at least 1, not ${count}`, {exitCode: 2});
  const minPassAsked = options.minPass ?? count;
  if (!Number.isInteger(minPassAsked) || minPassAsked < 0 || minPassAsked > count) throw new TskitError(`--min-pass must be between 0 and --count (${count}), not ${minPassAsked}`, {exitCode: 2});
  const parallel = Math.max(1, Math.min(options.parallel ?? count, count));
  const runId = options.runId ?? newRunId();
  const base = {runId, count, minPass: minPassAsked, startedAt: new Date(started), leaked: [] as Resource[]};
  const userStop = options.signal ?? new AbortController().signal;
  const interruptedBeforeStart = (): SessionResult => ({
    ...base,
    exitCode: exitCodeForAbort(userStop),
    reason: `${(userStop.reason as Error | undefined)?.message ?? 'interrupted'} before the instance started`,
    outcomes: [],
    passed: 0,
    durationMs: Date.now() - started,
  });
  if (userStop.aborted) return interruptedBeforeStart();
  await provider.check(options.runOptions);
  if (userStop.aborted) return interruptedBeforeStart();

  const journal = await RunJournal.create(options.stateDir ?? defaultStateDir(), runId, options.command ?? `run ${provider.name}`);
  const timeout = new AbortController();
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(new SessionTimeout(options.timeoutMs!)), options.timeoutMs);
  const runSignal = AbortSignal.any([userStop, timeout.signal]);
  const slots: Slot[] = Array.from({length: count}, (_, index) => ({index, name: options.name ? (count > 1 ? `${options.name}-${index}` : options.name) : slotName(options.image, index, count), watches: []}));
  const watches = (): InstanceWatch<RunOpts>[] => slots.flatMap((s) => s.watches as InstanceWatch<RunOpts>[]);
  let network: ClusterNetwork | undefined;

  const stopReason = (): {verdict: Verdict; exitCode: number; reason: string} | undefined => {
    if (userStop.aborted) return {verdict: 'interrupted', exitCode: exitCodeForAbort(userStop), reason: (userStop.reason as Error | undefined)?.message ?? 'interrupted'};
    if (timeout.signal.aborted) return {verdict: 'timeout', exitCode: ExitCode.timeout, reason: (timeout.signal.reason as Error).message};
    return undefined;
  };
  const onStop = (): void => {
    const why = stopReason();
    if (why) for (const w of watches()) w.decide(why.verdict, why.exitCode, why.reason);
  };
  userStop.addEventListener('abort', onStop, {once: true});
  timeout.signal.addEventListener('abort', onStop, {once: true});

  const decideSlot = (slot: Slot, verdict: Verdict, exitCode: number, reason: string): void => {
    slot.outcome = {index: slot.index, name: slot.name, verdict, exitCode, reason, durationMs: slot.askedAt === undefined ? 0 : Date.now() - slot.askedAt, consoleTail: '', consoleAtVerdict: '', order: decisionCounter++};
    emit({type: 'verdict', instance: slot.name, verdict, exitCode, reason, ...(count > 1 ? {index: slot.index} : {})});
  };

  try {
    if (count > 1 && provider.createClusterNetwork) {
      try {
        network = await provider.createClusterNetwork(count, options.runOptions, emit, runSignal, {runId, journal, ...(options.userData === undefined ? {} : {userData: options.userData})});
      } catch (error) {
        const why = stopReason();
        for (const slot of slots) decideSlot(slot, why?.verdict ?? 'provider-error', why?.exitCode ?? ExitCode.providerError, why?.reason ?? `cluster network: ${(error as Error).message}`);
      }
    }

    const startSlot = async (slot: Slot): Promise<unknown> => {
      if (slot.outcome) return undefined;
      const why = stopReason();
      if (why) return decideSlot(slot, why.verdict, why.exitCode, `${why.reason} before ${slot.name} started`);
      const context: RunContext = {
        runId,
        journal,
        ...(count > 1 || options.name ? {name: slot.name} : {}),
        ...(count > 1 ? {cluster: {index: slot.index, size: count, ...(network ? {network} : {})}} : {}),
        ...(options.userData === undefined ? {} : {userData: options.userData}),
      };
      slot.askedAt = Date.now();
      let instances: Instance[];
      try {
        instances = await provider.run(options.image, options.runOptions, emit, runSignal, context);
      } catch (error) {
        if (count === 1) return error;
        const stopped = stopReason();
        if (stopped) return decideSlot(slot, stopped.verdict, stopped.exitCode, `${stopped.reason} (${slot.name} still starting)`);
        return decideSlot(slot, 'provider-error', ExitCode.providerError, `${slot.name}: ${(error as Error).message}`);
      }
      for (const instance of instances) {
        const watch = new InstanceWatch(instance, slot.index, options, slot.askedAt);
        slot.watches.push(watch as InstanceWatch<unknown>);
        emit({type: 'instance.created', instance: instance.name, provider: instance.provider, runId, ...(count > 1 ? {index: slot.index} : {}), ...(instance.detail ? {detail: instance.detail} : {})});
        watch.start();
        const stopped = stopReason();
        if (stopped) watch.decide(stopped.verdict, stopped.exitCode, stopped.reason);
      }
      return undefined;
    };

    let next = 0;
    let firstFailure: unknown;
    await Promise.all(
      Array.from({length: parallel}, async () => {
        while (next < count) {
          const failure = await startSlot(slots[next++]!);
          if (failure !== undefined) firstFailure ??= failure;
        }
      }),
    );
    if (firstFailure !== undefined) {
      // One instance asked for and the provider could not start it: as before clusters, the
      // command reports the provider's error (or why the run ended while it was starting).
      if (userStop.aborted) return interruptedBeforeStart();
      if (timeout.signal.aborted) return {...base, exitCode: ExitCode.timeout, reason: `${(timeout.signal.reason as Error).message} (still starting)`, outcomes: [], passed: 0, durationMs: Date.now() - started};
      throw firstFailure;
    }

    await Promise.all(watches().map((w) => w.decided));
  } finally {
    clearTimeout(timer);
    userStop.removeEventListener('abort', onStop);
    timeout.signal.removeEventListener('abort', onStop);
    // Everything goes together once every instance has its verdict: members of a cluster may
    // still serve each other after their own marker.
    await Promise.allSettled(watches().map((w) => w.teardown(journal)));
    if (network) await destroyNetwork(network, options, journal);
    base.leaked = await journal.close();
    if (base.leaked.length > 0) {
      emit({type: 'log', level: 'warn', message: `left behind (run \`tskit gc\` to remove): ${base.leaked.map((r) => `${r.provider} ${r.kind} ${r.id}`).join(', ')}`});
    }
  }

  const decided: (InstanceOutcome & {order: number})[] = [];
  for (const slot of slots) {
    if (slot.outcome) decided.push(slot.outcome);
    for (const w of slot.watches) decided.push(w.decidedOutcome!);
  }
  const outcomes = decided.map(({order: _order, ...o}) => o);
  const minPass = options.minPass ?? decided.length;
  const passed = outcomes.filter((o) => o.exitCode === 0).length;
  const finish = (exitCode: number, reason: string): SessionResult => {
    const result: SessionResult = {...base, minPass, exitCode, reason, outcomes, passed, durationMs: Date.now() - started};
    if (count > 1) {
      const verdict = userStop.aborted ? 'interrupted' : exitCode === 0 ? 'passed' : 'failed';
      emit({type: 'cluster.verdict', runId, verdict, passed, count: outcomes.length, minPass, exitCode, reason});
    }
    return result;
  };
  const summary = `${passed} of ${outcomes.length} passed${minPass < outcomes.length ? ` (at least ${minPass} needed)` : ''}`;
  if (userStop.aborted) return finish(exitCodeForAbort(userStop), (userStop.reason as Error | undefined)?.message ?? 'interrupted');
  if (passed >= minPass && outcomes.length > 0) {
    if (base.leaked.length > 0) return finish(ExitCode.providerError, 'an instance could not be destroyed');
    return finish(ExitCode.ok, count > 1 ? summary : (outcomes[0]?.reason ?? 'no instances'));
  }
  const failed = [...decided].sort((a, b) => a.order - b.order).find((o) => o.exitCode !== 0);
  if (!failed) return finish(ExitCode.ok, 'no instances');
  return finish(failed.exitCode, count > 1 ? `${summary}; first failure: ${failed.name}: ${failed.reason}` : failed.reason);
}

/** `hello` for one instance, `hello-0`, `hello-1`... for a cluster (the image's base name). */
export function slotName(image: ImageRef, index: number, count: number): string {
  const base = image.id.replace(/\/+$/, '').split('/').pop()!.replace(/\.(img|raw|qcow2|vhdx?|vmdk|iso)$/i, '') || image.provider;
  return count > 1 ? `${base}-${index}` : base;
}

async function destroyNetwork<RunOpts>(network: ClusterNetwork, options: SessionOptions<RunOpts>, journal: RunJournal): Promise<void> {
  try {
    await options.provider.destroy(network, options.hurry ? {hurry: options.hurry} : {});
    await journal.forget(network);
  } catch (error) {
    options.emit({type: 'log', level: 'warn', message: `could not remove ${network.provider} network ${network.id}: ${(error as Error).message}`});
  }
}

let decisionCounter = 0;

/** Watches one instance: its console, its end, and its teardown. */
class InstanceWatch<RunOpts> {
  decidedOutcome: (InstanceOutcome & {order: number}) | undefined;
  destroyFailed = false;
  /** Resolves with the verdict (teardown comes later, for the whole run at once). */
  readonly decided: Promise<InstanceOutcome>;
  private readonly instance: Instance;
  private readonly index: number;
  private readonly askedAt: number;
  private readonly options: SessionOptions<RunOpts>;
  private readonly matcher: ConsoleMatcher<MarkerKind>;
  private readonly consoleStop = new AbortController();
  private resolveDecided!: (outcome: InstanceOutcome) => void;
  private quietTimer: NodeJS.Timeout | undefined;
  private panic: {line: string; timer: NodeJS.Timeout} | undefined;
  private consoleDone: Promise<void> = Promise.resolve();
  /** Decoded console text not yet sent as a console event. */
  private pendingText = '';
  /** The end of the console so far, for reports (bounded by consoleTailChars). */
  private tail = '';
  private teardownDone: Promise<void> | undefined;

  constructor(instance: Instance, index: number, options: SessionOptions<RunOpts>, askedAt: number) {
    this.instance = instance;
    this.index = index;
    this.askedAt = askedAt;
    this.options = options;
    this.decided = new Promise((resolve) => (this.resolveDecided = resolve));
    this.matcher = new ConsoleMatcher<MarkerKind>([
      ...(options.failOn ?? []).map((regex) => ({kind: 'fail-on' as const, regex})),
      ...(options.panicOn ?? [linuxPanic]).map((regex) => ({kind: 'panic' as const, regex})),
      {kind: 'panic-end', regex: linuxPanicEnd},
      ...(options.waitFor ?? []).map((regex) => ({kind: 'wait-for' as const, regex})),
    ]);
  }

  start(): void {
    this.consoleDone = this.readConsole();
    if (this.options.provider.wait) void this.watchEnd();
    else void this.consoleDone.then(() => this.decideByEnd({state: 'poweroff', detail: 'console closed'}));
  }

  /** First call wins; later calls (a timeout racing a marker) are ignored. */
  decide(verdict: Verdict, exitCode: number, reason: string): void {
    if (this.decidedOutcome) return;
    this.emitConsole(true);
    const cluster = (this.options.count ?? 1) > 1;
    this.decidedOutcome = {index: this.index, name: this.instance.name, instance: this.instance, verdict, exitCode, reason, durationMs: Date.now() - this.askedAt, consoleTail: this.consoleTail(), consoleAtVerdict: this.consoleTail(8192), order: decisionCounter++};
    clearTimeout(this.quietTimer);
    if (this.panic) clearTimeout(this.panic.timer);
    this.options.emit({type: 'verdict', instance: this.instance.name, verdict, exitCode, reason, ...(cluster ? {index: this.index} : {})});
    const {order: _order, ...outcome} = this.decidedOutcome;
    this.resolveDecided(outcome);
  }

  /** Destroys the instance and forgets it in the journal once that is confirmed. */
  teardown(journal: RunJournal): Promise<void> {
    this.teardownDone ??= (async () => {
      clearTimeout(this.quietTimer);
      if (this.panic) clearTimeout(this.panic.timer);
      this.consoleStop.abort();
      const {provider, emit, hurry} = this.options;
      const resource = instanceResource(this.instance);
      try {
        await provider.destroy(resource, hurry ? {hurry} : {});
        emit({type: 'instance.destroyed', instance: this.instance.name, provider: this.instance.provider});
        await journal.forget(resource);
      } catch (error) {
        this.destroyFailed = true;
        emit({type: 'log', level: 'warn', message: `could not destroy ${this.instance.provider} instance ${this.instance.id}: ${(error as Error).message}`});
      }
      // A provider whose console ignores the abort must not hold the run open.
      const settled = new AbortController();
      await Promise.race([this.consoleDone, delay(2000, settled.signal)]);
      settled.abort();
      // The console read after the verdict (until the teardown) belongs in the report too.
      if (this.decidedOutcome) this.decidedOutcome.consoleTail = this.consoleTail();
    })();
    return this.teardownDone;
  }

  private consoleTail(limit = this.options.consoleTailChars ?? 65_536): string {
    const text = this.tail + this.pendingText;
    return text.length > limit ? text.slice(-limit) : text;
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
    const data = this.pendingText.slice(0, cut);
    this.options.emit({type: 'console', instance: this.instance.name, data});
    this.pendingText = this.pendingText.slice(cut);
    const limit = this.options.consoleTailChars ?? 65_536;
    this.tail += data;
    if (this.tail.length > 2 * limit) this.tail = this.tail.slice(-limit);
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
