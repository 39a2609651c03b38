// `tskit gc [PROVIDER]`: remove what interrupted runs left behind. The work is src/run/gc.ts.
import {Args, Flags} from '@oclif/core';
import {TskitCommand} from '../cli/command.ts';
import {cacheDirFlags, cacheDirFromFlags} from '../cli/image-flags.ts';
import {openCache} from '../oci/cache.ts';
import {eventToJsonLine} from '../cli/json-lines.ts';
import {parseDuration} from '../run/duration.ts';
import {collectGarbage} from '../run/gc.ts';
import {providerEntry} from '../run/provider-registry.ts';
import {trapInterrupts} from '../run/signals.ts';
import {stateDir} from '../run/state-dir.ts';

export default class Gc extends TskitCommand {
  static override summary = 'Remove what interrupted runs left behind (VMs, temp files, cloud instances)';

  static override description = `Every run and build records what it creates in a journal (under $TSKIT_STATE, else $XDG_STATE_HOME/tskit, else ~/.local/state/tskit, in runs/) before creating it, and forgets it once it is removed. A tskit killed outright (SIGKILL, OOM, a lost CI runner) leaves its journal: gc removes everything still in the journals of runs whose tskit is gone, then asks each provider for what tskit created that no journal here knows (qemu: orphaned tskit-qemu-* temp dirs and VMs; clouds: resources tagged with a tskit run id), and removes those older than --older-than. Runs still going are left alone. Temp files of builds that were killed are removed by their journals, and temp files and leases that killed pulls left in the image cache (--cache-dir) are removed too.

Exit 0 when everything found was removed, 1 when something could not be.`;

  static override examples = ['<%= config.bin %> gc', '<%= config.bin %> gc qemu --dry-run', '<%= config.bin %> gc aws --older-than 6h'];

  static override args = {
    provider: Args.string({description: 'only this provider (default: all)'}),
  };

  static override flags = {
    ...cacheDirFlags,
    'older-than': Flags.string({description: "the provider sweep takes only what is older than this (journalled leftovers of dead runs are always taken)", default: '1h', helpValue: 'DURATION'}),
    'dry-run': Flags.boolean({description: 'only report what would be removed'}),
    json: Flags.boolean({description: 'print NDJSON events and a gc.report event on stdout'}),
  };

  async run(): Promise<void> {
    const interrupts = trapInterrupts();
    try {
      const {args, flags} = await this.parse(Gc);
      if (args.provider) providerEntry(args.provider);
      const olderThan = new Date(Date.now() - parseDuration(flags['older-than'], '--older-than'));
      const print = (line: string): void => void process.stdout.write(line);
      const report = await collectGarbage({
        stateDir: stateDir(),
        ...(args.provider ? {provider: args.provider} : {}),
        olderThan,
        dryRun: flags['dry-run'],
        signal: interrupts.stop,
        hurry: interrupts.hurry,
        emit: (event) => {
          if (flags.json) print(eventToJsonLine(event));
          else if (event.type === 'log' && event.level !== 'debug') process.stderr.write(`tskit: ${event.level === 'warn' ? 'warning: ' : ''}${event.message}\n`);
        },
      });
      if (!args.provider && !interrupts.interruption) {
        // what killed pulls and builds left in the image cache: temp files, leases
        for (const path of await openCache({dir: cacheDirFromFlags(flags)}).sweepDead({dryRun: flags['dry-run']})) {
          report.items.push({resource: {provider: 'cache', kind: path.includes('/leases/') ? 'lease' : 'temp-file', id: path}, source: 'list', outcome: flags['dry-run'] ? 'would-remove' : 'removed'});
        }
      }
      const kept = report.items.filter((i) => i.outcome === 'kept');
      if (flags.json) {
        print(`${JSON.stringify({v: 1, time: new Date().toISOString(), type: 'gc.report', items: report.items, runsInUse: report.runsInUse, journalsRemoved: report.journalsRemoved, skipped: report.skipped})}\n`);
      } else {
        for (const item of report.items) {
          const r = item.resource;
          const what = `${r.provider} ${r.kind} ${r.id}${r.runId ? ` (run ${r.runId})` : ''}`;
          const verb = item.outcome === 'removed' ? 'removed' : item.outcome === 'would-remove' ? 'would remove' : 'kept';
          print(`${verb} ${what}${item.reason ? `: ${item.reason}` : ''}\n`);
        }
        const removed = report.items.filter((i) => i.outcome === 'removed').length;
        const would = report.items.filter((i) => i.outcome === 'would-remove').length;
        const inUse = report.runsInUse.length > 0 ? `; ${report.runsInUse.length} run(s) still going left alone` : '';
        process.stderr.write(`tskit: ${flags['dry-run'] ? `${would} to remove` : `${removed} removed`}${kept.length ? `, ${kept.length} could not be removed` : ''}${inUse}\n`);
      }
      process.exitCode = interrupts.interruption ? interrupts.interruption.exitCode : kept.length > 0 ? 1 : 0;
    } finally {
      interrupts.dispose();
    }
  }
}
