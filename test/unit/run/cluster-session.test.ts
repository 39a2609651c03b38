// The run loop with --count: a scripted provider that sees what the loop hands each `run` call
// (name, index, cluster network, journal), so parallelism, verdicts, --min-pass, failures,
// interruptions, teardown order and the journal are checked exactly. Real qemu clusters are
// test/e2e/cluster*.test.ts.
import {existsSync} from 'node:fs';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import type {TskitEvent} from '../../../src/events.ts';
import type {ClusterNetwork, DestroyOptions, Instance, InstanceEnd, Provider, Resource, RunContext} from '../../../src/provider.ts';
import {runSession, type SessionOptions} from '../../../src/run/session.ts';
import {Interruption} from '../../../src/run/signals.ts';

interface Member {
  /** Console lines, one every `everyMs`. */
  lines: string[];
  everyMs?: number;
  /** run() for this index throws this. */
  runError?: string;
  /** run() for this index takes this long. */
  startMs?: number;
  destroyError?: string;
}

class ClusterScript implements Provider<unknown, unknown> {
  readonly name = 'script';
  readonly accepts = [];
  readonly contexts: RunContext[] = [];
  readonly log: string[] = [];
  running = 0;
  maxRunning = 0;
  private readonly members: Member[];

  constructor(members: Member[]) {
    this.members = members;
  }

  async check(): Promise<void> {}

  async push(): Promise<never> {
    throw new Error('not used');
  }

  async createClusterNetwork(size: number, _o: unknown, _e: unknown, _s: AbortSignal, context: Omit<RunContext, 'cluster' | 'name'>): Promise<ClusterNetwork> {
    const network: ClusterNetwork = {provider: this.name, kind: 'network', id: 'net', runId: context.runId, addresses: Array.from({length: size}, (_, i) => `10.0.0.${i + 1}/24`)};
    await context.journal.record(network);
    this.log.push('network created');
    return network;
  }

  async run(_image: unknown, _opts: unknown, _emit: unknown, signal: AbortSignal, context?: RunContext): Promise<Instance[]> {
    const index = context!.cluster?.index ?? 0;
    const member = this.members[index]!;
    this.contexts.push(context!);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, member.startMs ?? 20);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        }, {once: true});
      });
      if (member.runError) throw new TskitError(member.runError, {exitCode: 125});
      const id = `vm${index}`;
      await context!.journal.record({provider: this.name, kind: 'instance', id});
      return [{provider: this.name, id, name: context!.name ?? id}];
    } finally {
      this.running--;
    }
  }

  async *console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const member = this.members[Number(instance.id.slice(2))]!;
    for (const line of member.lines) {
      await new Promise((r) => setTimeout(r, member.everyMs ?? 10));
      if (signal.aborted) return;
      yield new TextEncoder().encode(`${line}\n`);
    }
    await new Promise((r) => signal.addEventListener('abort', r, {once: true}));
  }

  async wait(_instance: Instance, signal: AbortSignal): Promise<InstanceEnd> {
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true}));
  }

  async destroy(resource: Resource, _options: DestroyOptions = {}): Promise<void> {
    const member = resource.kind === 'instance' ? this.members[Number(resource.id.slice(2))] : undefined;
    if (member?.destroyError) throw new Error(member.destroyError);
    this.log.push(`destroyed ${resource.kind} ${resource.id}`);
  }
}

let state: string;
beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'tskit-test-cluster-session-'));
});
afterAll(async () => {
  await rm(state, {recursive: true, force: true});
});

async function cluster(provider: ClusterScript, options: Partial<SessionOptions<unknown>> = {}) {
  const events: TskitEvent[] = [];
  const result = await runSession({provider, image: {provider: 'script', id: '/images/out/hello'}, runOptions: {}, emit: (e) => events.push(e), stateDir: state, quietMs: 20, drainMs: 50, ...options});
  return {result, events, types: events.filter((e) => e.type !== 'console' && e.type !== 'log').map((e) => `${e.type}${'instance' in e ? ` ${e.instance}` : ''}`)};
}

const ok = (extra: string[] = []): Member => ({lines: ['booting', ...extra, 'READY']});

describe('runSession with --count', () => {
  it('runs three members with names, indexes and the network; destroys all after every verdict, the network last', async () => {
    const p = new ClusterScript([ok(), ok(), ok()]);
    const {result, events, types} = await cluster(p, {count: 3, waitFor: [/READY/]});
    expect(result).toMatchObject({exitCode: 0, count: 3, passed: 3, minPass: 3, reason: '3 of 3 passed'});
    expect(result.outcomes.map((o) => [o.index, o.name, o.verdict])).toEqual([
      [0, 'hello-0', 'matched'],
      [1, 'hello-1', 'matched'],
      [2, 'hello-2', 'matched'],
    ]);
    expect(p.contexts.map((c) => [c.name, c.cluster?.index, c.cluster?.size, c.cluster?.network?.addresses.length, c.runId])).toEqual([0, 1, 2].map((i) => [`hello-${i}`, i, 3, 3, result.runId]));
    // every verdict before any teardown; the cluster verdict last
    const lastVerdict = Math.max(...types.flatMap((t, i) => (t.startsWith('verdict') ? [i] : [])));
    const firstDestroyed = types.findIndex((t) => t.startsWith('instance.destroyed'));
    expect(lastVerdict).toBeLessThan(firstDestroyed);
    expect(p.log.at(-1)).toBe('destroyed network net');
    expect(events.at(-1)).toMatchObject({type: 'cluster.verdict', verdict: 'passed', passed: 3, count: 3, exitCode: 0, runId: result.runId});
    expect(events.filter((e) => e.type === 'instance.created').map((e) => (e as {index?: number}).index).sort()).toEqual([0, 1, 2]);
    // the journal is gone: everything it recorded was removed
    expect(await readdir(join(state, 'runs'))).toEqual([]);
    expect(result.outcomes[0]!.consoleTail).toContain('READY');
  });

  it('starts at most --parallel members at once', async () => {
    const slow = (): Member => ({...ok(), startMs: 60});
    const one = new ClusterScript([slow(), slow(), slow(), slow()]);
    await cluster(one, {count: 4, parallel: 1, waitFor: [/READY/]});
    expect(one.maxRunning).toBe(1);
    const two = new ClusterScript([slow(), slow(), slow(), slow()]);
    await cluster(two, {count: 4, parallel: 2, waitFor: [/READY/]});
    expect(two.maxRunning).toBe(2);
    const all = new ClusterScript([slow(), slow(), slow(), slow()]);
    await cluster(all, {count: 4, waitFor: [/READY/]});
    expect(all.maxRunning).toBe(4);
  });

  it('fails the cluster when one member fails, unless --min-pass allows it', async () => {
    const members = (): Member[] => [ok(), {lines: ['booting', 'FAIL: disk missing']}, ok()];
    const strict = await cluster(new ClusterScript(members()), {count: 3, waitFor: [/READY/], failOn: [/FAIL/]});
    expect(strict.result).toMatchObject({exitCode: 1, passed: 2});
    expect(strict.result.reason).toBe('2 of 3 passed; first failure: hello-1: --fail-on /FAIL/ matched: FAIL: disk missing');
    expect(strict.result.outcomes[1]).toMatchObject({verdict: 'failed-marker', exitCode: 1});
    expect(strict.result.outcomes[1]!.consoleAtVerdict).toContain('FAIL: disk missing');
    expect(strict.events.at(-1)).toMatchObject({type: 'cluster.verdict', verdict: 'failed', exitCode: 1});
    const tolerant = await cluster(new ClusterScript(members()), {count: 3, minPass: 2, waitFor: [/READY/], failOn: [/FAIL/]});
    expect(tolerant.result).toMatchObject({exitCode: 0, passed: 2, minPass: 2, reason: '2 of 3 passed (at least 2 needed)'});
  });

  it('gives a member the provider could not start a provider-error verdict, and runs the others', async () => {
    const p = new ClusterScript([ok(), {lines: [], runError: 'no such image'}, ok()]);
    const {result, events} = await cluster(p, {count: 3, waitFor: [/READY/]});
    expect(result.exitCode).toBe(125);
    expect(result.outcomes.map((o) => o.verdict)).toEqual(['matched', 'provider-error', 'matched']);
    expect(result.outcomes[1]).toMatchObject({name: 'hello-1', reason: 'hello-1: no such image'});
    expect(result.outcomes[1]!.instance).toBeUndefined();
    expect(events.find((e) => e.type === 'verdict' && e.instance === 'hello-1')).toMatchObject({verdict: 'provider-error', index: 1});
  });

  it('an interruption while members start: the started ones are destroyed, the rest are interrupted, exit 128+n', async () => {
    const p = new ClusterScript([ok(), ok(), {...ok(), startMs: 5000}, {...ok(), startMs: 5000}, ok()]);
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Interruption('SIGTERM')), 200);
    const started = Date.now();
    // two at a time: 0 and 1 start, then 2 and 3 are still starting when the signal comes, 4 never starts
    const {result, events} = await cluster(p, {count: 5, parallel: 2, waitFor: [/NEVER/], signal: stop.signal});
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result.exitCode).toBe(143);
    expect(result.outcomes.map((o) => [o.name, o.verdict, o.exitCode])).toEqual([
      ['hello-0', 'interrupted', 143],
      ['hello-1', 'interrupted', 143],
      ['hello-2', 'interrupted', 143],
      ['hello-3', 'interrupted', 143],
      ['hello-4', 'interrupted', 143],
    ]);
    expect(result.outcomes[2]!.reason).toBe('interrupted by SIGTERM (hello-2 still starting)');
    expect(result.outcomes[4]!.reason).toBe('interrupted by SIGTERM before hello-4 started');
    expect(p.log.filter((l) => l.startsWith('destroyed instance')).sort()).toEqual(['destroyed instance vm0', 'destroyed instance vm1']);
    expect(events.at(-1)).toMatchObject({type: 'cluster.verdict', verdict: 'interrupted'});
    expect(await readdir(join(state, 'runs'))).toEqual([]);
  });

  it('keeps what it could not destroy in the journal for tskit gc, and exits 125', async () => {
    const p = new ClusterScript([ok(), {...ok(), destroyError: 'API said no'}]);
    const {result, events} = await cluster(p, {count: 2, waitFor: [/READY/], runId: 'tskit-20261127-000000-leaked'});
    expect(result.exitCode).toBe(125);
    expect(result.leaked).toEqual([expect.objectContaining({provider: 'script', kind: 'instance', id: 'vm1', runId: 'tskit-20261127-000000-leaked'})]);
    expect(events.some((e) => e.type === 'log' && /run `tskit gc`/.test(e.message))).toBe(true);
    const journal = join(state, 'runs', 'tskit-20261127-000000-leaked.journal');
    expect(existsSync(journal)).toBe(true);
    const lines = (await readFile(journal, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as {op: string; resource?: Resource});
    expect(lines[0]).toMatchObject({v: 1, op: 'run', runId: 'tskit-20261127-000000-leaked', owner: {pid: process.pid}});
    expect(lines.filter((l) => l.op === 'record').map((l) => l.resource!.id).sort()).toEqual(['net', 'vm0', 'vm1']);
    expect(lines.filter((l) => l.op === 'forget').map((l) => l.resource!.id).sort()).toEqual(['net', 'vm0']);
    await rm(journal);
  });

  it('refuses a --min-pass above --count and a count below 1', async () => {
    await expect(cluster(new ClusterScript([ok()]), {count: 2, minPass: 3})).rejects.toThrow(/--min-pass must be between 0 and --count \(2\)/);
    await expect(cluster(new ClusterScript([ok()]), {count: 0})).rejects.toThrow(/--count must be/);
  });
});
