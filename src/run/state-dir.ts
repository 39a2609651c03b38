// Where tskit keeps state that outlives a command (probe results, journals):
// $TSKIT_STATE, else $XDG_STATE_HOME/tskit, else ~/.local/state/tskit.
import {mkdir} from 'node:fs/promises';
import {homedir} from 'node:os';
import {dirname, join} from 'node:path';

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSKIT_STATE) return env.TSKIT_STATE;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'tskit');
  return join(homedir(), '.local', 'state', 'tskit');
}

/**
 * mkdir -p without `{recursive: true}`: Node 24's recursive mkdir spins forever on some
 * paths (under /proc, for one) instead of failing, and a state dir path comes from the user.
 */
export async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw error;
    await ensureDir(parent);
    await mkdir(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}
