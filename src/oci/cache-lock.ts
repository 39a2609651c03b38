// Cross-process coordination for one cache directory, with nothing but the filesystem:
// - a lock file created with O_EXCL that holds its owner's identity (host, pid, process
//   start time), so a lock left by a crashed process is recognised and broken safely;
// - leases (as containerd has them): small files naming the digests a live process is
//   writing or using, which `cache rm`/`clean` never delete.
import {randomBytes} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {mkdir, open, readdir, readFile, rename, stat, unlink} from 'node:fs/promises';
import {hostname} from 'node:os';
import {dirname, join} from 'node:path';
import {TskitError} from '../errors.ts';
import {isNoSpace, noSpaceError, writeFileReporting} from './file-writes.ts';

export interface ProcessIdentity {
  host: string;
  pid: number;
  /** The process start time from /proc/<pid>/stat (clock ticks since boot), guarding against pid reuse. */
  start?: string;
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let self: ProcessIdentity | undefined;
export function currentProcess(): ProcessIdentity {
  self ??= {host: hostname(), pid: process.pid, ...(processStart(process.pid) ? {start: processStart(process.pid)} : {})};
  return self;
}

/** False only when we can tell the process is gone; a process on another host counts as alive. */
export function isAlive(owner: ProcessIdentity): boolean {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (owner.start !== undefined) {
    const start = processStart(owner.pid);
    if (start !== undefined && start !== owner.start) return false; // the pid was reused
  }
  return true;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface LockRecord extends ProcessIdentity {
  nonce: string;
  acquired: string;
}

export interface LockOptions {
  /** How long to wait for a live holder before giving up. */
  timeoutMs?: number;
}

/**
 * An exclusive lock held only for short read-modify-write steps (never across network
 * transfers). Calls on one instance are queued; other instances and processes wait on the file.
 */
export class CacheLock {
  readonly path: string;
  private readonly timeoutMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private nonce: string | undefined;

  constructor(path: string, options: LockOptions = {}) {
    this.path = path;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** Runs `fn` holding the lock. */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      await this.acquire();
      try {
        return await fn();
      } finally {
        await this.release();
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private async acquire(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let delay = 2;
    for (;;) {
      const nonce = randomBytes(8).toString('hex');
      const record: LockRecord = {...currentProcess(), nonce, acquired: new Date().toISOString()};
      try {
        const handle = await open(this.path, 'wx', 0o644);
        const text = JSON.stringify(record);
        try {
          await handle.writeFile(text);
        } catch (error) {
          // a lock file without its owner would look like a crashed one for 10 s: remove it
          await handle.close().catch(() => {});
          await unlink(this.path).catch(() => {});
          if (isNoSpace(error)) throw await noSpaceError(this.path, 'the cache lock', text.length, 0, error);
          throw error;
        }
        await handle.close();
        this.nonce = nonce;
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          await mkdir(dirname(this.path), {recursive: true});
          continue;
        }
        if (code !== 'EEXIST') throw error;
      }
      const holder = await this.readHolder();
      if (holder === 'gone') continue;
      if (holder === 'unreadable' ? await this.olderThan(this.path, 10_000) : !isAlive(holder)) {
        await this.breakStale(holder === 'unreadable' ? undefined : holder.nonce);
        continue;
      }
      if (Date.now() > deadline) {
        const who = holder === 'unreadable' ? 'another process' : `process ${holder.pid} on ${holder.host} (since ${holder.acquired})`;
        throw new TskitError(`the cache lock ${this.path} is held by ${who}; gave up after ${Math.round(this.timeoutMs / 1000)} s`);
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  private async release(): Promise<void> {
    const nonce = this.nonce;
    this.nonce = undefined;
    const holder = await this.readHolder();
    // Only remove our own lock (it is ours unless someone wrongly broke it).
    if (holder !== 'gone' && holder !== 'unreadable' && holder.nonce === nonce) await unlink(this.path).catch(() => {});
  }

  private async readHolder(): Promise<LockRecord | 'gone' | 'unreadable'> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      throw error;
    }
    try {
      const record = JSON.parse(text) as LockRecord;
      if (typeof record.pid !== 'number' || typeof record.nonce !== 'string') return 'unreadable';
      return record;
    } catch {
      return 'unreadable'; // being written right now, or left half-written by a crash
    }
  }

  private async olderThan(path: string, ms: number): Promise<boolean> {
    try {
      return Date.now() - (await stat(path)).mtimeMs > ms;
    } catch {
      return false;
    }
  }

  /**
   * Removes a dead holder's lock. Breakers take a second O_EXCL file first, so two of them
   * cannot both decide the lock is stale and one delete the lock the other just took.
   */
  private async breakStale(staleNonce: string | undefined): Promise<void> {
    const breaker = `${this.path}.break`;
    try {
      const handle = await open(breaker, 'wx', 0o644);
      await handle.close();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A breaker that crashed mid-break: breaking takes milliseconds, so 10 s means dead.
      if (await this.olderThan(breaker, 10_000)) await unlink(breaker).catch(() => {});
      await sleep(5);
      return;
    }
    try {
      const holder = await this.readHolder();
      const stillStale = holder === 'unreadable' ? staleNonce === undefined : holder !== 'gone' && holder.nonce === staleNonce;
      if (stillStale) await unlink(this.path).catch(() => {});
    } finally {
      await unlink(breaker).catch(() => {});
    }
  }
}

interface LeaseRecord extends ProcessIdentity {
  created: string;
  digests: string[];
}

/** Writes a file atomically: a temp name in the same directory, then rename. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFileReporting(temp, data, `the new ${path}`);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/**
 * A set of digests a live process needs kept. Call `add` while holding the cache lock,
 * before checking whether a blob exists, so a concurrent clean either sees the lease or has
 * finished deleting before the check.
 */
export class Lease {
  readonly path: string;
  private readonly digests = new Set<string>();
  private released = false;

  constructor(dir: string) {
    const me = currentProcess();
    this.path = join(dir, `${me.pid}-${randomBytes(6).toString('hex')}.json`);
  }

  has(digest: string): boolean {
    return this.digests.has(digest);
  }

  /** Records more digests; the caller holds the cache lock. */
  async addLocked(digests: Iterable<string>): Promise<void> {
    if (this.released) throw new Error('lease already released');
    let changed = false;
    for (const digest of digests) {
      if (!this.digests.has(digest)) {
        this.digests.add(digest);
        changed = true;
      }
    }
    if (!changed) return;
    const record: LeaseRecord = {...currentProcess(), created: new Date().toISOString(), digests: [...this.digests]};
    await mkdir(join(this.path, '..'), {recursive: true});
    await writeFileAtomic(this.path, JSON.stringify(record));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await unlink(this.path).catch(() => {});
  }

  /** For process-exit cleanup, where only synchronous calls run. */
  releaseSync(unlinkSync: (path: string) => void): void {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** Digests held by live leases in `dir`; lease files of dead processes are removed. Call with the lock held. */
export async function liveLeasedDigests(dir: string, except?: Lease): Promise<Set<string>> {
  const digests = new Set<string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return digests;
    throw error;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (except && path === except.path) continue;
    if (!name.endsWith('.json')) {
      // A temp file of a lease write that crashed.
      if (name.includes('.tmp-') && (await isStaleTemp(path))) await unlink(path).catch(() => {});
      continue;
    }
    let record: LeaseRecord;
    try {
      record = JSON.parse(await readFile(path, 'utf8')) as LeaseRecord;
    } catch {
      continue; // vanished between readdir and read: released
    }
    if (!isAlive(record)) {
      await unlink(path).catch(() => {});
      continue;
    }
    for (const digest of record.digests ?? []) digests.add(digest);
  }
  return digests;
}

/** Lease files of processes that are gone (this host's), which anyone may remove: nothing of theirs is in use. */
export async function deadLeases(dir: string): Promise<string[]> {
  const dead: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const path = join(dir, name);
    try {
      const record = JSON.parse(await readFile(path, 'utf8')) as LeaseRecord;
      if (typeof record.pid === 'number' && typeof record.host === 'string' && !isAlive(record)) dead.push(path);
    } catch {
      // vanished, or being written: alive
    }
  }
  return dead;
}

async function isStaleTemp(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > 60_000;
  } catch {
    return false;
  }
}
