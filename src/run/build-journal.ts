// `tskit build` keeps a run journal too: it records the directory and marker of its temp
// files before writing any (src/build/staged-files.ts), so a build killed outright leaves a
// journal `tskit gc` removes them by. Each build first removes what dead builds left. A
// state dir that cannot be written costs only that: the build goes on without a journal.
import type {Emit} from '../events.ts';
import {STAGED_OUTPUTS} from '../build/staged-files.ts';
import {collectGarbage} from './gc.ts';
import {newRunId} from './run-id.ts';
import {RunJournal} from './run-journal.ts';

export async function openBuildJournal(stateDir: string, emit: Emit): Promise<RunJournal | undefined> {
  const debug = (message: string) => emit({type: 'log', level: 'debug', message});
  try {
    const swept = await collectGarbage({stateDir, provider: STAGED_OUTPUTS.provider, olderThan: new Date(), emit: () => {}});
    for (const item of swept.items) if (item.outcome === 'removed') debug(`removed the temp files of a build that was killed: ${item.resource.id}`);
  } catch (error) {
    debug(`could not look for temp files of killed builds: ${(error as Error).message}`);
  }
  try {
    return await RunJournal.create(stateDir, newRunId(), 'build');
  } catch (error) {
    debug(`${(error as Error).message}; building without a journal`);
    return undefined;
  }
}
