// Where the reference LinuxKit CLI (v1.8.2) is: $LINUXKIT, `linuxkit` on PATH, the peer cache
// (~/.cache/tskit-peers/linuxkit, which ../shared/peers/build-linuxkit.sh fills), or one
// `go install`ed into .fixtures; parity tests skip with the reason when there is none.
import {execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {homedir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {ROOT} from './cli.ts';

const run = promisify(execFile);
export const LINUXKIT_COMMIT = '43200ea6342590c6806f808b318d7f3a69b0cdd8';

export async function findLinuxkit(): Promise<{path?: string; reason: string}> {
  if (process.env.LINUXKIT) return existsSync(process.env.LINUXKIT) ? {path: process.env.LINUXKIT, reason: ''} : {reason: `$LINUXKIT (${process.env.LINUXKIT}) does not exist`};
  try {
    const {stdout} = await run('sh', ['-c', 'command -v linuxkit']);
    if (stdout.trim()) return {path: stdout.trim(), reason: ''};
  } catch {
    // not on PATH
  }
  const peer = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tskit-peers', 'linuxkit');
  if (existsSync(peer)) return {path: peer, reason: ''};
  const gobin = join(ROOT, '.fixtures', 'linuxkit', 'bin');
  if (existsSync(join(gobin, 'linuxkit'))) return {path: join(gobin, 'linuxkit'), reason: ''};
  try {
    await run('go', ['version']);
  } catch {
    return {reason: 'Go is not installed, so LinuxKit cannot be installed'};
  }
  try {
    await mkdir(gobin, {recursive: true});
    await run('go', ['install', `github.com/linuxkit/linuxkit/src/cmd/linuxkit@${LINUXKIT_COMMIT}`], {env: {...process.env, GOBIN: gobin}, timeout: 180_000});
    return {path: join(gobin, 'linuxkit'), reason: ''};
  } catch (error) {
    const text = String((error as {stderr?: string}).stderr ?? error).trim().split('\n').slice(-2).join(' ');
    return {reason: `go install of LinuxKit ${LINUXKIT_COMMIT} failed: ${text}`};
  }
}
