// `tskit gc`: removes what interrupted runs left behind, for every provider alike.
//  1. The journals (src/run/run-journal.ts) of runs whose tskit is gone: every resource still
//     live in one is destroyed through its provider and forgotten; the journal goes when
//     nothing is left. A journal whose owner still runs is not touched.
//  2. Each provider's `list()` (resources tagged/named by tskit with no journal here: a
//     killed run on another machine, a lost state dir), older than `olderThan`, less anything
//     a journal of a running tskit holds.
// Nothing is removed with `dryRun`; what would be is reported the same way.
import {removeStagedOutputs, STAGED_OUTPUTS} from '../build/staged-files.ts';
import {TskitError} from '../errors.ts';
import type {Emit} from '../events.ts';
import type {Provider, Resource} from '../provider.ts';
import {loadProvider, providerNames} from './provider-registry.ts';
import {forgetInJournal, readJournals, removeJournal} from './run-journal.ts';

export interface GcOptions {
  stateDir: string;
  /** Only this provider's leftovers (journal entries of others stay). */
  provider?: string;
  /** The list sweep takes only resources created before this. */
  olderThan: Date;
  dryRun?: boolean;
  /** A second Ctrl-C: stop being graceful. */
  hurry?: AbortSignal;
  /** Stops between resources. */
  signal?: AbortSignal;
  emit: Emit;
  /** Default: the provider registry. */
  load?: (name: string) => Promise<Provider<unknown, unknown>>;
}

export interface GcItem {
  resource: Resource;
  /** journal: from a dead run's journal; list: from the provider's own sweep. */
  source: 'journal' | 'list';
  /** removed (or would be, with dryRun), or kept with a reason. */
  outcome: 'removed' | 'would-remove' | 'kept';
  reason?: string;
}

export interface GcReport {
  items: GcItem[];
  /** Runs whose tskit still runs: left alone. */
  runsInUse: string[];
  /** Journals removed because nothing in them is left. */
  journalsRemoved: string[];
  /** Providers whose sweep could not run (not configured here: no credentials, no region), when gc was not asked for one. */
  skipped: Array<{provider: string; reason: string}>;
}

const key = (r: Resource): string => `${r.provider}\0${r.kind}\0${r.id}`;

/** What no provider owns and gc removes itself: the temp files of a build that was killed. */
const LOCAL: Record<string, (resource: Resource) => Promise<void>> = {[STAGED_OUTPUTS.provider]: removeStagedOutputs};

export async function collectGarbage(options: GcOptions): Promise<GcReport> {
  const load = options.load ?? loadProvider;
  const report: GcReport = {items: [], runsInUse: [], journalsRemoved: [], skipped: []};
  const providers = new Map<string, Promise<Provider<unknown, unknown>>>();
  const providerFor = (name: string): Promise<Provider<unknown, unknown>> => {
    let p = providers.get(name);
    if (!p) providers.set(name, (p = load(name)));
    return p;
  };
  const remove = async (resource: Resource, source: GcItem['source']): Promise<boolean> => {
    if (options.dryRun) {
      report.items.push({resource, source, outcome: 'would-remove'});
      return false;
    }
    try {
      const local = LOCAL[resource.provider];
      if (local) await local(resource);
      else await (await providerFor(resource.provider)).destroy(resource, options.hurry ? {hurry: options.hurry} : {});
      report.items.push({resource, source, outcome: 'removed'});
      options.emit({type: 'resource.destroyed', provider: resource.provider, kind: resource.kind, id: resource.id, ...(resource.runId ? {runId: resource.runId} : {})});
      return true;
    } catch (error) {
      report.items.push({resource, source, outcome: 'kept', reason: (error as Error).message});
      options.emit({type: 'log', level: 'warn', message: `could not remove ${resource.provider} ${resource.kind} ${resource.id}: ${(error as Error).message}`});
      return false;
    }
  };

  const journals = await readJournals(options.stateDir);
  const claimed = new Set<string>();
  for (const journal of journals) {
    for (const r of journal.live) claimed.add(key(r));
    if (journal.ownerAlive) {
      report.runsInUse.push(journal.runId);
      continue;
    }
    if (options.signal?.aborted) break;
    const mine = journal.live.filter((r) => !options.provider || r.provider === options.provider);
    const removed: Resource[] = [];
    // Instances before the networks and images they use: the reverse of the order they were made in.
    for (const resource of [...mine].reverse()) {
      if (options.signal?.aborted) break;
      if (await remove({...resource, runId: resource.runId ?? journal.runId}, 'journal')) removed.push(resource);
    }
    if (options.dryRun) continue;
    if (removed.length > 0) await forgetInJournal(journal, removed);
    else if (journal.live.length === 0) await removeJournal(journal);
    if (journal.live.length === 0) report.journalsRemoved.push(journal.runId);
  }

  for (const name of options.provider ? [options.provider] : providerNames()) {
    if (options.signal?.aborted) break;
    if (LOCAL[name]) continue; // journalled only
    try {
      const provider = await providerFor(name);
      if (!provider.list) continue;
      for await (const resource of provider.list({olderThan: options.olderThan})) {
        if (options.signal?.aborted) break;
        if (claimed.has(key(resource)) || report.items.some((i) => key(i.resource) === key(resource))) continue;
        // a live run's resource that its journal names only through another (a cluster
        // network's interfaces, say) is still the live run's
        if (resource.runId && report.runsInUse.includes(resource.runId)) continue;
        await remove(resource, 'list');
      }
    } catch (error) {
      // `tskit gc` with no provider named sweeps every provider; one this machine has no
      // account for (no credentials, no region) is reported and skipped, not a failure.
      if (options.provider || !(error instanceof TskitError)) throw error;
      report.skipped.push({provider: name, reason: error.message});
      options.emit({type: 'log', level: 'info', message: `skipped the ${name} sweep: ${error.message}`});
    }
  }
  return report;
}
