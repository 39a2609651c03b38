// Where tskit keeps state that outlives a command (probe results, journals):
// $TSKIT_STATE, else $XDG_STATE_HOME/tskit, else ~/.local/state/tskit.
import {homedir} from 'node:os';
import {join} from 'node:path';

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSKIT_STATE) return env.TSKIT_STATE;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'tskit');
  return join(homedir(), '.local', 'state', 'tskit');
}
