// Where an interrupted push picks up: per region and image digest, the snapshot being
// written and the blocks it already holds (EBS method), or the multipart upload and its
// parts (import method, found again through S3's own ListParts). Written atomically (temp
// name, rename), often enough that a re-run repeats at most a few seconds of work.
import {readFile, rename, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {ensureDir, stateDir} from '../../src/run/state-dir.ts';

export interface EbsUploadState {
  snapshotId: string;
  startedAt: string;
  /** Block indexes the snapshot acknowledged with our checksum. */
  done: number[];
}

export class UploadStateStore {
  readonly dir: string;

  constructor(dir: string = join(stateDir(), 'aws-uploads')) {
    this.dir = dir;
  }

  private path(key: string): string {
    return join(this.dir, `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  }

  async load(key: string): Promise<EbsUploadState | undefined> {
    try {
      const state = JSON.parse(await readFile(this.path(key), 'utf8')) as EbsUploadState;
      return typeof state.snapshotId === 'string' && Array.isArray(state.done) ? state : undefined;
    } catch {
      return undefined;
    }
  }

  async save(key: string, state: EbsUploadState): Promise<void> {
    await ensureDir(this.dir);
    const path = this.path(key);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(state), {mode: 0o600});
    await rename(temp, path);
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), {force: true});
  }
}
