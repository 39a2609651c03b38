// What the AWS provider writes down before each call that creates something billable, and
// crosses out after a confirmed delete, so a run killed with SIGKILL (or a power cut) leaves
// a list `tskit gc aws` can work through. The provider only sees this small interface; the
// shared journal of src/run replaces the file one below when it lands.
import {appendFile, readdir, readFile, rm} from 'node:fs/promises';
import {join} from 'node:path';
import type {Resource} from '../../src/provider.ts';
import {ensureDir, stateDir} from '../../src/run/state-dir.ts';

/**
 * An AWS resource as the journal and `destroy` know it. Kinds: instance, client-token (the
 * instances one RunInstances call made, found by its ClientToken when the call's answer was
 * lost), volume, network-interface, security-group, image, snapshot, import-snapshot-task,
 * s3-object (id `bucket/key`), s3-multipart-upload (id `bucket/key#uploadId`).
 */
export interface AwsResource extends Resource {
  provider: 'aws';
  region?: string;
}

export interface AwsJournal {
  /** Called before the call that creates `resource` (or right after, when only then its id is known). */
  record(resource: AwsResource): Promise<void>;
  /** Called after `resource` is confirmed gone, or handed over (a pushed AMI is the product, not debris). */
  forget(resource: AwsResource): Promise<void>;
}

export const noJournal: AwsJournal = {
  async record() {},
  async forget() {},
};

const key = (r: AwsResource): string => `${r.region ?? ''}|${r.kind}|${r.id}`;

/**
 * An append-only NDJSON file per process under `<state>/aws-journal/`: `+` lines record, `-`
 * lines forget. A file whose resources are all forgotten is removed when the process
 * closes it.
 */
export class FileJournal implements AwsJournal {
  readonly path: string;
  private readonly open = new Map<string, AwsResource>();
  private queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  static forProcess(env: NodeJS.ProcessEnv = process.env): FileJournal {
    return new FileJournal(join(journalDir(env), `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.ndjson`));
  }

  record(resource: AwsResource): Promise<void> {
    this.open.set(key(resource), resource);
    return this.write({op: '+', ...resource, at: new Date().toISOString()});
  }

  forget(resource: AwsResource): Promise<void> {
    if (!this.open.delete(key(resource))) return Promise.resolve();
    return this.write({op: '-', ...resource, at: new Date().toISOString()});
  }

  /** Removes the file when nothing in it is left open. */
  async close(): Promise<void> {
    await this.queue;
    if (this.open.size === 0) await rm(this.path, {force: true});
  }

  private write(line: Record<string, unknown>): Promise<void> {
    // Serialised, so the file never has interleaved lines; a failure to write is reported to
    // the caller, which must not create the resource then.
    const next = this.queue.then(async () => {
      await ensureDir(join(this.path, '..'));
      await appendFile(this.path, `${JSON.stringify(line)}\n`, {mode: 0o600});
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

export function journalDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'aws-journal');
}

/** Every resource recorded and not forgotten, across all journal files, with the file it is in. */
export async function readJournals(dir: string = journalDir()): Promise<{file: string; resource: AwsResource}[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const found: {file: string; resource: AwsResource}[] = [];
  for (const name of names.filter((n) => n.endsWith('.ndjson')).sort()) {
    const file = join(dir, name);
    const open = new Map<string, AwsResource>();
    for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n')) {
      if (!line.trim()) continue;
      let entry: {op?: string} & AwsResource;
      try {
        entry = JSON.parse(line) as {op?: string} & AwsResource;
      } catch {
        continue; // a torn last line from a killed process
      }
      const {op, ...rest} = entry;
      const resource: AwsResource = {provider: 'aws', kind: rest.kind, id: rest.id, ...(rest.region ? {region: rest.region} : {}), ...(rest.runId ? {runId: rest.runId} : {}), ...(rest.createdAt ? {createdAt: rest.createdAt} : {})};
      if (op === '+') open.set(key(resource), resource);
      else if (op === '-') open.delete(key(resource));
    }
    for (const resource of open.values()) found.push({file, resource});
  }
  return found;
}
