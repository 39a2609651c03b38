// The run loop against a scripted provider (a console script and an ending), so every verdict
// path is exercised exactly; test/e2e/run-qemu*.test.ts runs the same loop against real qemu.
import {describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import type {TskitEvent} from '../../../src/events.ts';
import type {DestroyOptions, Instance, InstanceEnd, Provider, Resource} from '../../../src/provider.ts';
import {runSession, type SessionOptions} from '../../../src/run/session.ts';
import {Interruption} from '../../../src/run/signals.ts';

type Step = string | Uint8Array | {delay: number} | {fail: string};

interface Script {
  steps: Step[];
  /** How the instance ends after its steps; 'never' keeps it running until destroyed. */
  end?: InstanceEnd | 'never';
}

class ScriptedProvider implements Provider<unknown, unknown> {
  readonly name = 'script';
  readonly accepts = [];
  readonly destroyed: {id: string; hurried: boolean}[] = [];
  private readonly scripts: Script[];
  private readonly finished = new Map<string, () => void>();
  private readonly done = new Map<string, Promise<void>>();
  checkError?: Error;
  runError?: Error;

  constructor(...scripts: Script[]) {
    this.scripts = scripts;
  }

  async check(): Promise<void> {
    if (this.checkError) throw this.checkError;
  }

  async push(): Promise<never> {
    throw new Error('not used');
  }

  async run(): Promise<Instance[]> {
    if (this.runError) throw this.runError;
    return this.scripts.map((_, i) => {
      const id = `vm${i}`;
      this.done.set(id, new Promise((resolve) => this.finished.set(id, resolve)));
      return {provider: this.name, id, name: `vm${i}`};
    });
  }

  async *console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const script = this.scripts[Number(instance.id.slice(2))]!;
    for (const step of script.steps) {
      if (signal.aborted) return;
      if (typeof step === 'string') yield new TextEncoder().encode(step);
      else if (step instanceof Uint8Array) yield step;
      else if ('fail' in step) throw new Error(step.fail);
      else await new Promise((r) => setTimeout(r, step.delay));
    }
    this.finished.get(instance.id)!();
    if (script.end === 'never' && !signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, {once: true}));
  }

  async wait(instance: Instance, signal: AbortSignal): Promise<InstanceEnd> {
    const script = this.scripts[Number(instance.id.slice(2))]!;
    await this.done.get(instance.id);
    if ((script.end === 'never' || script.end === undefined) && !signal.aborted) {
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true}));
    }
    return script.end as InstanceEnd;
  }

  async destroy(resource: Resource, options: DestroyOptions = {}): Promise<void> {
    this.destroyed.push({id: resource.id, hurried: options.hurry?.aborted ?? false});
  }
}

async function session(provider: ScriptedProvider, options: Partial<SessionOptions<unknown>> = {}) {
  const events: TskitEvent[] = [];
  const result = await runSession({provider, image: {provider: 'script', id: 'img'}, runOptions: {}, emit: (e) => events.push(e), quietMs: 30, panicSettleMs: 300, drainMs: 300, ...options});
  const consoleText = events.flatMap((e) => (e.type === 'console' ? [e.data] : [])).join('');
  return {result, events, consoleText, types: events.map((e) => e.type).filter((t) => t !== 'console')};
}

const poweroff: InstanceEnd = {state: 'poweroff', detail: 'guest powered off'};

describe('runSession', () => {
  it('succeeds when --wait-for matches, destroys the instance once, in event order', async () => {
    const p = new ScriptedProvider({steps: ['boot\n', 'TESTS ', 'PASSED\n', 'more\n'], end: 'never'});
    const {result, types, events} = await session(p, {waitFor: [/TESTS PASSED/]});
    expect(result).toMatchObject({exitCode: 0, outcomes: [{verdict: 'matched', exitCode: 0}]});
    expect(types).toEqual(['instance.created', 'matched', 'verdict', 'instance.destroyed']);
    expect(events.find((e) => e.type === 'matched')).toMatchObject({pattern: 'TESTS PASSED', line: 'TESTS PASSED'});
    expect(p.destroyed).toEqual([{id: 'vm0', hurried: false}]);
  });

  it('fails on --fail-on, which wins over --wait-for on the same line', async () => {
    const p = new ScriptedProvider({steps: ['\x1b[31mERROR\x1b[0m and DONE\n'], end: 'never'});
    const {result} = await session(p, {waitFor: [/DONE/], failOn: [/^ERROR/]});
    expect(result).toMatchObject({exitCode: 1, outcomes: [{verdict: 'failed-marker'}]});
    expect(result.reason).toContain('ERROR and DONE');
  });

  it('matches a marker printed without a newline after the quiet spell', async () => {
    const p = new ScriptedProvider({steps: ['prompt> '], end: 'never'});
    const {result, consoleText} = await session(p, {waitFor: [/prompt> $/], timeoutMs: 5000});
    expect(result.outcomes[0]).toMatchObject({verdict: 'matched'});
    expect(consoleText).toBe('prompt> ');
  });

  it('reports a kernel panic with its whole trace, up to the end line', async () => {
    const p = new ScriptedProvider({
      steps: ['Run /init\n', '[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n', {delay: 50}, 'Call Trace:\n dump_stack\n', {delay: 50}, '---[ end Kernel panic - not syncing: Attempted to kill init! ]---\n', 'never printed?\n'],
      end: 'never',
    });
    const {result, consoleText, types} = await session(p, {waitFor: [/never/]});
    expect(result).toMatchObject({exitCode: 1, outcomes: [{verdict: 'panic'}]});
    expect(result.reason).toContain('Attempted to kill init');
    expect(consoleText).toContain('---[ end Kernel panic');
    // A --wait-for line after the panic does not turn it into a success.
    expect(types).toEqual(['instance.created', 'matched', 'verdict', 'instance.destroyed']);
  });

  it('decides a panic without an end line after the settle time', async () => {
    const p = new ScriptedProvider({steps: ['Kernel panic - not syncing: VFS: Unable to mount root fs\n'], end: 'never'});
    const started = Date.now();
    const {result} = await session(p, {panicSettleMs: 200});
    expect(result.outcomes[0]).toMatchObject({verdict: 'panic', exitCode: 1});
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('exits 0 on poweroff without --wait-for, 1 with one that never matched, 1 on reset', async () => {
    expect((await session(new ScriptedProvider({steps: ['bye\n'], end: poweroff}))).result).toMatchObject({exitCode: 0, outcomes: [{verdict: 'exited'}]});
    const unmatched = await session(new ScriptedProvider({steps: ['bye\n'], end: poweroff}), {waitFor: [/PASS/]});
    expect(unmatched.result).toMatchObject({exitCode: 1, outcomes: [{verdict: 'exited'}]});
    expect(unmatched.result.reason).toMatch(/before any --wait-for/);
    const reset = await session(new ScriptedProvider({steps: [], end: {state: 'reboot', detail: 'guest reset'}}));
    expect(reset.result).toMatchObject({exitCode: 1, reason: 'guest reset'});
  });

  it('takes a marker printed just before poweroff', async () => {
    const p = new ScriptedProvider({steps: ['PASS'], end: poweroff});
    const {result} = await session(p, {waitFor: [/PASS/]});
    expect(result.outcomes[0]).toMatchObject({verdict: 'matched', exitCode: 0});
  });

  it('exits 125 when the hypervisor fails or the console breaks', async () => {
    const crashed = await session(new ScriptedProvider({steps: ['x\n'], end: {state: 'error', detail: 'qemu exited with status 1'}}));
    expect(crashed.result).toMatchObject({exitCode: 125, outcomes: [{verdict: 'provider-error'}]});
    const broken = await session(new ScriptedProvider({steps: ['x\n', {fail: 'serial port gone'}], end: 'never'}));
    expect(broken.result).toMatchObject({exitCode: 125});
    expect(broken.result.reason).toContain('serial port gone');
  });

  it('times out with 124 and destroys the instance', async () => {
    const p = new ScriptedProvider({steps: ['idle\n'], end: 'never'});
    const {result} = await session(p, {timeoutMs: 200, waitFor: [/never/]});
    expect(result).toMatchObject({exitCode: 124, outcomes: [{verdict: 'timeout'}]});
    expect(result.reason).toMatch(/no verdict after/);
    expect(p.destroyed).toHaveLength(1);
  });

  it('stops on interruption with 128+n, passing the hurry signal to destroy', async () => {
    const p = new ScriptedProvider({steps: ['idle\n'], end: 'never'});
    const stop = new AbortController();
    const hurry = new AbortController();
    setTimeout(() => {
      stop.abort(new Interruption('SIGTERM'));
      hurry.abort();
    }, 100);
    const {result} = await session(p, {signal: stop.signal, hurry: hurry.signal});
    expect(result).toMatchObject({exitCode: 143, outcomes: [{verdict: 'interrupted'}]});
    expect(p.destroyed).toEqual([{id: 'vm0', hurried: true}]);
  });

  it('decodes UTF-8 split across chunks and sends console events by line', async () => {
    const bytes = new TextEncoder().encode('héllo wörld ✓\nnext\n');
    const p = new ScriptedProvider({steps: [...bytes].map((b) => new Uint8Array([b])), end: poweroff});
    const {consoleText, events} = await session(p);
    expect(consoleText).toBe('héllo wörld ✓\nnext\n');
    expect(events.filter((e) => e.type === 'console').map((e) => (e as {data: string}).data)).toEqual(['héllo wörld ✓\n', 'next\n']);
  });

  it('gives every instance a verdict and exits with the first failure', async () => {
    const p = new ScriptedProvider({steps: ['READY\n'], end: 'never'}, {steps: ['booting\n'], end: 'never'});
    const {result} = await session(p, {waitFor: [/READY/], timeoutMs: 300});
    expect(result.outcomes.map((o) => o.verdict)).toEqual(['matched', 'timeout']);
    expect(result.exitCode).toBe(124);
    expect(p.destroyed.map((d) => d.id).sort()).toEqual(['vm0', 'vm1']);
  });

  it('throws what check and run throw, having started nothing', async () => {
    const p = new ScriptedProvider({steps: []});
    p.checkError = new TskitError('no qemu', {exitCode: 125});
    await expect(session(p)).rejects.toThrow('no qemu');
    const q = new ScriptedProvider({steps: []});
    q.runError = new TskitError('bad image', {exitCode: 125});
    await expect(session(q)).rejects.toThrow('bad image');
    expect(q.destroyed).toEqual([]);
  });

  it('returns the interruption without starting when already interrupted', async () => {
    const p = new ScriptedProvider({steps: []});
    const stop = new AbortController();
    stop.abort(new Interruption('SIGINT'));
    const {result} = await session(p, {signal: stop.signal});
    expect(result.exitCode).toBe(130);
    expect(result.outcomes).toEqual([]);
  });
});
