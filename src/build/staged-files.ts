// Outputs are written under temporary names beside their final ones and renamed only when
// every output of the build is complete, so a failed or interrupted build leaves no
// partial file behind (and never replaces a good earlier output with a broken one).
import {randomBytes} from 'node:crypto';
import {rename, rm} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';

export class StagedFiles {
  private readonly staged = new Map<string, string>();
  private readonly scratch = new Set<string>();

  /** A temporary path that becomes `finalPath` at commit. */
  stage(finalPath: string): string {
    // a second output of the same name (NAME-kernel from two kernel+ formats) replaces the first
    const earlier = this.staged.get(finalPath);
    if (earlier !== undefined) this.scratch.add(earlier);
    const temp = join(dirname(finalPath), `.${basename(finalPath)}.tskit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    this.staged.set(finalPath, temp);
    return temp;
  }

  /** A temporary path removed at commit or abort. */
  scratchFile(near: string, label: string): string {
    const temp = join(dirname(near), `.${basename(near)}.${label}.tskit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
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
}
