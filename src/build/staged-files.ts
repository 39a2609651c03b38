// Outputs are written under temporary names beside their final ones and renamed only when
// every output of the build is complete, so a failed or interrupted build leaves no
// partial file behind (and never replaces a good earlier output with a broken one).
//
// Every temp name of one build carries the same marker, `.tskit-tmp-PID-TOKEN-`: a build
// killed outright (SIGKILL, OOM) cannot remove its files, so it records the directory and
// the marker in a run journal first (stagedOutputsResource), and `tskit gc` (or the next
// build) removes what the dead build left (removeStagedOutputs).
import {randomBytes} from 'node:crypto';
import {readdir, rename, rm} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import {TskitError} from '../errors.ts';
import type {Resource} from '../provider.ts';

/** Resource.provider and kind of a build's staged outputs in a run journal. */
export const STAGED_OUTPUTS = {provider: 'build', kind: 'staged-outputs'} as const;

export class StagedFiles {
  /** In every temp name of this build. */
  readonly marker = `.tskit-tmp-${process.pid}-${randomBytes(4).toString('hex')}-`;
  private readonly staged = new Map<string, string>();
  private readonly scratch = new Set<string>();
  private count = 0;

  private tempName(near: string, label?: string): string {
    return join(dirname(near), `.${basename(near)}${label ? `.${label}` : ''}${this.marker}${this.count++}`);
  }

  /** A temporary path that becomes `finalPath` at commit. */
  stage(finalPath: string): string {
    // a second output of the same name (NAME-kernel from two kernel+ formats) replaces the first
    const earlier = this.staged.get(finalPath);
    if (earlier !== undefined) this.scratch.add(earlier);
    const temp = this.tempName(finalPath);
    this.staged.set(finalPath, temp);
    return temp;
  }

  /** A temporary path removed at commit or abort. */
  scratchFile(near: string, label: string): string {
    const temp = this.tempName(near, label);
    this.scratch.add(temp);
    return temp;
  }

  /** A fresh temporary path for `finalPath`; the previous one becomes scratch (read it, then it goes). */
  restage(finalPath: string): {previous: string; next: string} {
    const previous = this.staged.get(finalPath);
    if (previous === undefined) throw new Error(`restage: ${finalPath} was not staged`);
    this.scratch.add(previous);
    return {previous, next: this.stage(finalPath)};
  }

  /** Drops a staged output that turned out not to be needed. */
  async unstage(finalPath: string): Promise<void> {
    const temp = this.staged.get(finalPath);
    if (temp) await rm(temp, {force: true});
    this.staged.delete(finalPath);
  }

  async commit(): Promise<string[]> {
    for (const [finalPath, temp] of this.staged) await rename(temp, finalPath);
    await this.removeScratch();
    const done = [...this.staged.keys()];
    this.staged.clear();
    return done;
  }

  async abort(): Promise<void> {
    await Promise.all([...this.staged.values()].map((temp) => rm(temp, {force: true})));
    this.staged.clear();
    await this.removeScratch();
  }

  private async removeScratch(): Promise<void> {
    await Promise.all([...this.scratch].map((temp) => rm(temp, {force: true})));
    this.scratch.clear();
  }

  /** What a run journal records before this build writes temp files in `dir`. */
  resource(dir: string): Resource {
    return {...STAGED_OUTPUTS, id: join(dir, `*${this.marker}*`), detail: {dir, marker: this.marker}};
  }
}

/** Removes the temp files a (dead) build's journal names; what is already gone is fine. */
export async function removeStagedOutputs(resource: Resource): Promise<void> {
  const dir = resource.detail?.dir;
  const marker = resource.detail?.marker;
  if (typeof dir !== 'string' || typeof marker !== 'string' || !/^\.tskit-tmp-\d+-[0-9a-f]+-$/.test(marker)) {
    throw new TskitError(`the journal entry for ${resource.id} does not say which directory and temp names it is`);
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const name of names) {
    if (name.startsWith('.') && name.includes(marker)) await rm(join(dir, name), {force: true});
  }
}
