import {existsSync} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {homedir, tmpdir} from 'node:os';
import {join} from 'node:path';
import {describe, expect, it} from 'vitest';
import {ensureDir, stateDir} from '../../../src/run/state-dir.ts';

describe('stateDir', () => {
  it('prefers TSKIT_STATE, then XDG_STATE_HOME, then ~/.local/state', () => {
    expect(stateDir({TSKIT_STATE: '/s', XDG_STATE_HOME: '/x'})).toBe('/s');
    expect(stateDir({XDG_STATE_HOME: '/x'})).toBe('/x/tskit');
    expect(stateDir({})).toBe(join(homedir(), '.local/state/tskit'));
  });
});

describe('ensureDir', () => {
  it('creates missing parents and accepts an existing dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tskit-test-state-'));
    await ensureDir(join(dir, 'a/b/c'));
    await ensureDir(join(dir, 'a/b/c'));
    expect(existsSync(join(dir, 'a/b/c'))).toBe(true);
    await rm(dir, {recursive: true});
  });

  it('fails, rather than spinning as Node 24 mkdir {recursive} does, under /proc', async () => {
    await expect(ensureDir('/proc/tskit-no-such/dir')).rejects.toThrow(/ENOENT/);
  });
});
