// The run journal and `tskit gc` over it: append-only lines, fsync'd; a torn last line is
// ignored; the owner's liveness decides whether gc may touch a journal; gc destroys through
// the provider by name, forgets, and removes the journal when nothing is left. The provider
// here records what it is asked to destroy; the real qemu path is test/e2e/cluster-signals.
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {hostname, tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import type {Provider, Resource} from '../../../src/provider.ts';
import {collectGarbage} from '../../../src/run/gc.ts';
import {newRunId, runIdTime} from '../../../src/run/run-id.ts';
import {ownerAlive, readJournals, RunJournal} from '../../../src/run/run-journal.ts';

let state: string;
beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'tskit-test-journal-'));
});
afterEach(async () => {
  await rm(state, {recursive: true, force: true});
});

class Recorder implements Partial<Provider<unknown, unknown>> {
  readonly destroyed: string[] = [];
  readonly failing = new Set<string>();
  listed: Resource[] = [];
  async destroy(resource: Resource): Promise<void> {
    if (this.failing.has(resource.id)) throw new Error('still attached');
    this.destroyed.push(`${resource.kind} ${resource.id}`);
  }
  async *list(filter: {olderThan?: Date}): AsyncIterable<Resource> {
    for (const r of this.listed) if (!filter.olderThan || !r.createdAt || new Date(r.createdAt) < filter.olderThan) yield r;
  }
}

/** A journal as a tskit that was SIGKILLed leaves it: its owner no longer runs; the last line torn. */
async function deadJournal(runId: string, lines: object[], torn = true): Promise<string> {
  await mkdir(join(state, 'runs'), {recursive: true});
  const path = join(state, 'runs', `${runId}.journal`);
  const header = {v: 1, op: 'run', runId, command: 'run qemu', startedAt: '2026-01-01T00:00:00.000Z', owner: {pid: 2 ** 22 + 7, startTicks: '1', host: hostname()}};
  await writeFile(path, [header, ...lines].map((l) => JSON.stringify(l)).join('\n') + (torn ? '\n{"op":"record","time":"2026-01-01T00:00:0' : '\n'));
  return path;
}

const rec = (kind: string, id: string, detail?: object) => ({op: 'record', time: 't', resource: {provider: 'script', kind, id, ...(detail ? {detail} : {})}});
const forget = (kind: string, id: string) => ({op: 'forget', time: 't', resource: {provider: 'script', kind, id}});

describe('RunJournal', () => {
  it('writes a header and one line per record, update and forget; goes when nothing is live', async () => {
    const runId = newRunId(new Date('2026-11-27T20:53:19Z'));
    expect(runId).toMatch(/^tskit-20261127-205319-[a-z0-9]{6}$/);
    expect(runIdTime(runId)).toEqual(new Date('2026-11-27T20:53:19Z'));
    const journal = await RunJournal.create(state, runId, 'run qemu');
    await journal.record({provider: 'qemu', kind: 'instance', id: 'a', detail: {tempDir: '/tmp/a'}});
    await journal.update({provider: 'qemu', kind: 'instance', id: 'a', detail: {pid: 42}});
    await journal.record({provider: 'qemu', kind: 'network', id: 'n'});
    const text = await readFile(journal.path, 'utf8');
    const [parsed] = await readJournals(state);
    expect(parsed).toMatchObject({runId, ownerAlive: true, header: {op: 'run', command: 'run qemu', owner: {pid: process.pid, host: hostname()}}});
    expect(parsed!.live).toEqual([
      expect.objectContaining({id: 'a', runId, detail: {tempDir: '/tmp/a', pid: 42}}),
      expect.objectContaining({id: 'n', kind: 'network'}),
    ]);
    expect(text.trim().split('\n')).toHaveLength(4);
    await journal.forget({provider: 'qemu', kind: 'instance', id: 'a'});
    expect(await journal.close()).toEqual([expect.objectContaining({id: 'n'})]);
    expect(existsSync(journal.path)).toBe(true);

    const clean = await RunJournal.create(state, newRunId(), 'run qemu');
    await clean.record({provider: 'qemu', kind: 'instance', id: 'b'});
    await clean.forget({provider: 'qemu', kind: 'instance', id: 'b'});
    expect(await clean.close()).toEqual([]);
    expect(existsSync(clean.path)).toBe(false);
  });

  it('refuses an existing run id and an unwritable state dir, with what to do', async () => {
    await RunJournal.create(state, 'same', 'x');
    await expect(RunJournal.create(state, 'same', 'x')).rejects.toThrow(/cannot write the run journal .*same\.journal.*set TSKIT_STATE/);
    await expect(RunJournal.create('/proc/tskit-none', 'x', 'x')).rejects.toMatchObject({exitCode: 125});
    await expect(RunJournal.create(state, '../escape', 'x')).rejects.toThrow(/may hold only/);
  });

  it('tells a live owner from a dead one: pid gone, pid reused (another start time), another boot', async () => {
    const journal = await RunJournal.create(state, 'mine', 'x');
    const [me] = await readJournals(state);
    await journal.close();
    const owner = me!.header!.owner;
    expect(await ownerAlive(owner)).toBe(true);
    expect(await ownerAlive({...owner, pid: 2 ** 22 + 7})).toBe(false);
    expect(await ownerAlive({...owner, startTicks: '1'})).toBe(false);
    expect(await ownerAlive({...owner, bootId: 'another-boot'})).toBe(false);
    // another host's journal (shared storage) is never judged dead
    expect(await ownerAlive({...owner, pid: 2 ** 22 + 7, host: 'elsewhere'})).toBe(true);
  });
});

describe('collectGarbage', () => {
  it('destroys what dead runs left (newest first), forgets it, removes the journal; leaves live runs alone', async () => {
    const path = await deadJournal('tskit-dead', [rec('network', 'net'), rec('instance', 'vm0'), rec('instance', 'vm1'), forget('instance', 'vm1'), rec('instance', 'vm2')]);
    const live = await RunJournal.create(state, 'tskit-live', 'run qemu');
    await live.record({provider: 'script', kind: 'instance', id: 'busy'});
    const p = new Recorder();
    const opts = {stateDir: state, olderThan: new Date(), emit: () => {}, load: async () => p as unknown as Provider<unknown, unknown>};

    const dry = await collectGarbage({...opts, dryRun: true, provider: 'qemu'});
    expect(dry.items).toEqual([]);
    const dryAll = await collectGarbage({...opts, dryRun: true, provider: 'script'});
    expect(dryAll.items.map((i) => [i.outcome, i.resource.id])).toEqual([
      ['would-remove', 'vm2'],
      ['would-remove', 'vm0'],
      ['would-remove', 'net'],
    ]);
    expect(p.destroyed).toEqual([]);

    p.failing.add('vm0');
    const first = await collectGarbage({...opts, provider: 'script'});
    expect(first.runsInUse).toEqual(['tskit-live']);
    expect(first.items.map((i) => [i.outcome, i.resource.id, i.resource.runId])).toEqual([
      ['removed', 'vm2', 'tskit-dead'],
      ['kept', 'vm0', 'tskit-dead'],
      ['removed', 'net', 'tskit-dead'],
    ]);
    expect(first.items[1]!.reason).toBe('still attached');
    expect((await readJournals(state)).find((j) => j.runId === 'tskit-dead')!.live.map((r) => r.id)).toEqual(['vm0']);

    p.failing.clear();
    const second = await collectGarbage({...opts, provider: 'script'});
    expect(second.items.map((i) => [i.outcome, i.resource.id])).toEqual([['removed', 'vm0']]);
    expect(second.journalsRemoved).toEqual(['tskit-dead']);
    expect(existsSync(path)).toBe(false);
    expect(p.destroyed).toEqual(['instance vm2', 'network net', 'instance vm0']);
    expect(await readdir(join(state, 'runs'))).toEqual(['tskit-live.journal']);
    await live.close();
  });

  it("sweeps the provider's list too, older than --older-than, skipping what a live run holds", async () => {
    const live = await RunJournal.create(state, 'tskit-live', 'run qemu');
    await live.record({provider: 'script', kind: 'instance', id: 'busy'});
    const p = new Recorder();
    const old = new Date(Date.now() - 3_600_000).toISOString();
    p.listed = [
      {provider: 'script', kind: 'instance', id: 'orphan', createdAt: old},
      {provider: 'script', kind: 'instance', id: 'busy', createdAt: old},
      {provider: 'script', kind: 'instance', id: 'young', createdAt: new Date().toISOString()},
      // not in the live run's journal itself (it holds the network), but tagged with its run id
      {provider: 'script', kind: 'network-interface', id: 'eni-pending', runId: 'tskit-live', createdAt: old},
    ];
    const report = await collectGarbage({stateDir: state, provider: 'script', olderThan: new Date(Date.now() - 60_000), emit: () => {}, load: async () => p as unknown as Provider<unknown, unknown>});
    expect(report.items.map((i) => [i.source, i.outcome, i.resource.id])).toEqual([['list', 'removed', 'orphan']]);
    await live.close();
  });

  it('removes a dead journal that recorded nothing (killed before it created anything), keeps entries of providers it cannot load', async () => {
    await deadJournal('tskit-empty', []);
    await deadJournal('tskit-alien', [{op: 'record', time: 't', resource: {provider: 'nowhere', kind: 'vm', id: 'x'}}], false);
    const report = await collectGarbage({
      stateDir: state,
      olderThan: new Date(0),
      emit: () => {},
      load: async (name) => {
        if (name === 'nowhere') throw new Error('unknown provider "nowhere"');
        return new Recorder() as unknown as Provider<unknown, unknown>;
      },
    });
    expect(report.journalsRemoved).toEqual(['tskit-empty']);
    expect(report.items).toEqual([expect.objectContaining({outcome: 'kept', reason: 'unknown provider "nowhere"'})]);
    expect(await readdir(join(state, 'runs'))).toEqual(['tskit-alien.journal']);
  });
});

describe('RunJournal.adopt', () => {
  it('takes over what a dead run recorded, so gc no longer removes it; a live run keeps its own', async () => {
    const deadPath = await deadJournal('tskit-dead-push', [rec('snapshot', 'snap-1'), rec('s3-object', 'b/k')], false);
    const alive = await RunJournal.create(state, 'tskit-alive-push', 'push aws');
    await alive.record({provider: 'script', kind: 'snapshot', id: 'snap-2'});
    const resumed = await RunJournal.create(state, 'tskit-resumed-push', 'push aws');
    await resumed.adopt({provider: 'script', kind: 'snapshot', id: 'snap-1'});
    await resumed.adopt({provider: 'script', kind: 'snapshot', id: 'snap-2'});
    const journals = await readJournals(state);
    expect(journals.find((j) => j.runId === 'tskit-dead-push')!.live.map((r) => r.id)).toEqual(['b/k']);
    expect(journals.find((j) => j.runId === 'tskit-alive-push')!.live.map((r) => r.id)).toEqual(['snap-2']);
    expect(journals.find((j) => j.runId === 'tskit-resumed-push')!.live.map((r) => r.id)).toEqual(['snap-1', 'snap-2']);
    // the last live resource adopted away: the dead run's journal goes
    await resumed.adopt({provider: 'script', kind: 's3-object', id: 'b/k'});
    expect(existsSync(deadPath)).toBe(false);
    await alive.close();
    await resumed.close();
  });
});
