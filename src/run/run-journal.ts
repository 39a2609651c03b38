// The run journal: what a run created, written down BEFORE each thing is created, so that a
// tskit killed outright (SIGKILL, a power cut, an OOM kill) leaves a list `tskit gc` can
// clean up from. One append-only NDJSON file per run, <state dir>/runs/<run id>.journal:
//
//   {"v":1,"op":"run","runId":"...","command":"run qemu","startedAt":"...","owner":{"pid":..,"startTicks":"..","bootId":"..","host":".."}}
//   {"op":"record","time":"...","resource":{"provider":"qemu","kind":"instance","id":"tskit-qemu-ab12cd","runId":"...","detail":{"tempDir":"..."}}}
//   {"op":"update","time":"...","resource":{... "detail":{"tempDir":"...","pid":4242}}}
//   {"op":"forget","time":"...","resource":{"provider":"qemu","kind":"instance","id":"tskit-qemu-ab12cd"}}
//
// Every line is fsync'd before the call returns (and the directory when the file appears or
// goes), so what the journal says survives a crash of the machine too. A resource is live
// from its `record` until its `forget`; the file is removed once the run has ended with
// nothing live. A torn last line (killed mid-write) is ignored: the resource it was about to
// record had not been created yet.
import {hostname} from 'node:os';
import {open, readdir, readFile, unlink, type FileHandle} from 'node:fs/promises';
import {join} from 'node:path';
import {TskitError} from '../errors.ts';
import type {Resource, ResourceJournal} from '../provider.ts';
import {ensureDir} from './state-dir.ts';

export const JOURNAL_VERSION = 1;
const SUFFIX = '.journal';

/** Who holds a journal: enough to tell, from another process, whether it still runs. */
export interface JournalOwner {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22): a reused pid has another. */
  startTicks?: string;
  /** /proc/sys/kernel/random/boot_id: after a reboot no owner is alive. */
  bootId?: string;
  host: string;
}

export interface JournalHeader {
  v: number;
  op: 'run';
  runId: string;
  command: string;
  startedAt: string;
  owner: JournalOwner;
}

type JournalLine = JournalHeader | {op: 'record' | 'update' | 'forget'; time: string; resource: Resource};

/** The directory holding the journals under a state dir. */
export function journalDir(stateDir: string): string {
  return join(stateDir, 'runs');
}

const key = (r: Pick<Resource, 'provider' | 'kind' | 'id'>): string => `${r.provider}\0${r.kind}\0${r.id}`;

export class RunJournal implements ResourceJournal {
  readonly runId: string;
  readonly path: string;
  private readonly handle: FileHandle;
  private readonly dir: string;
  private readonly entries = new Map<string, Resource>();
  /** Appends run one after another, in call order. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(runId: string, path: string, dir: string, handle: FileHandle) {
    this.runId = runId;
    this.path = path;
    this.dir = dir;
    this.handle = handle;
  }

  /** Creates the run's journal (the file must not exist yet). TskitError (exit 125) when it cannot be written. */
  static async create(stateDir: string, runId: string, command: string): Promise<RunJournal> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(runId)) throw new TskitError(`run id "${runId}" may hold only letters, digits, dots, dashes and underscores`, {exitCode: 2});
    const dir = journalDir(stateDir);
    const path = join(dir, `${runId}${SUFFIX}`);
    let handle: FileHandle;
    try {
      await ensureDir(dir);
      handle = await open(path, 'wx', 0o600);
    } catch (error) {
      throw new TskitError(`cannot write the run journal ${path}: ${(error as Error).message} (tskit records what it creates there so \`tskit gc\` can remove it after a crash; set TSKIT_STATE to a writable directory)`, {exitCode: 125});
    }
    const journal = new RunJournal(runId, path, dir, handle);
    const header: JournalHeader = {v: JOURNAL_VERSION, op: 'run', runId, command, startedAt: new Date().toISOString(), owner: await currentOwner()};
    await journal.append(header);
    await syncDir(dir);
    return journal;
  }

  /** What is recorded and not yet forgotten. */
  get live(): Resource[] {
    return [...this.entries.values()];
  }

  record(resource: Resource): Promise<void> {
    const entry = {...resource, runId: resource.runId ?? this.runId, createdAt: resource.createdAt ?? new Date().toISOString()};
    this.entries.set(key(entry), entry);
    return this.append({op: 'record', time: new Date().toISOString(), resource: entry});
  }

  /**
   * Takes over a resource an earlier, dead run recorded (a resumed upload continuing into the
   * snapshot an interrupted one started): recorded here, forgotten there, so `tskit gc` never
   * removes what this run goes on to use. A run still alive keeps its own.
   */
  async adopt(resource: Resource): Promise<void> {
    await this.record(resource);
    await this.queue;
    for (const other of await readJournals(join(this.dir, '..'))) {
      if (other.runId === this.runId || other.ownerAlive) continue;
      if (other.live.some((r) => key(r) === key(resource))) await forgetInJournal(other, [resource]);
    }
  }

  update(resource: Resource): Promise<void> {
    const known = this.entries.get(key(resource));
    const entry = {...known, ...resource, runId: resource.runId ?? known?.runId ?? this.runId, detail: {...known?.detail, ...resource.detail}};
    this.entries.set(key(entry), entry);
    return this.append({op: 'update', time: new Date().toISOString(), resource: entry});
  }

  forget(resource: Resource): Promise<void> {
    if (!this.entries.delete(key(resource))) return this.queue;
    const {provider, kind, id} = resource;
    return this.append({op: 'forget', time: new Date().toISOString(), resource: {provider, kind, id}});
  }

  /**
   * Ends the run's use of the journal: the file goes when nothing is live (a clean end), and
   * stays for `tskit gc` when something could not be removed. Returns what is still live.
   */
  async close(): Promise<Resource[]> {
    if (this.closed) return this.live;
    this.closed = true;
    await this.queue.catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    if (this.entries.size === 0) {
      await unlink(this.path).catch(() => undefined);
      await syncDir(this.dir);
    }
    return this.live;
  }

  private append(line: JournalLine): Promise<void> {
    const text = `${JSON.stringify(line)}\n`;
    const next = this.queue.then(async () => {
      if (this.closed) throw new TskitError(`run journal ${this.path} is closed`, {exitCode: 125});
      await this.handle.appendFile(text);
      await this.handle.sync();
    });
    // A failed write fails its caller (nothing gets created unrecorded), not every later one.
    this.queue = next.catch(() => undefined);
    return next.catch((error: unknown) => {
      if (error instanceof TskitError) throw error;
      throw new TskitError(`cannot write the run journal ${this.path}: ${(error as Error).message}`, {exitCode: 125});
    });
  }
}

/** A journal as `tskit gc` reads it. */
export interface JournalFile {
  path: string;
  runId: string;
  header?: JournalHeader;
  /** Recorded and never forgotten, in recording order. */
  live: Resource[];
  /** True while the process that wrote it still runs (then it is not gc's to touch). */
  ownerAlive: boolean;
  /** The file does not end with a newline (its writer was killed mid-line): appends start a new line. */
  torn: boolean;
}

/** Every journal under the state dir (none when the directory does not exist). */
export async function readJournals(stateDir: string): Promise<JournalFile[]> {
  const dir = journalDir(stateDir);
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw new TskitError(`cannot read the run journals in ${dir}: ${error.message}`);
  });
  const files: JournalFile[] = [];
  for (const name of names.filter((n) => n.endsWith(SUFFIX)).sort()) {
    const path = join(dir, name);
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    files.push(await parseJournal(path, name.slice(0, -SUFFIX.length), text));
  }
  return files;
}

/** Reads one journal's text: the header and what is live. Unparseable lines are skipped (a torn last write). */
export async function parseJournal(path: string, runId: string, text: string): Promise<JournalFile> {
  let header: JournalHeader | undefined;
  const live = new Map<string, Resource>();
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let line: JournalLine;
    try {
      line = JSON.parse(raw) as JournalLine;
    } catch {
      continue;
    }
    if (line.op === 'run') header = line;
    else if (line.op === 'record' || line.op === 'update') {
      const known = live.get(key(line.resource));
      if (line.op === 'update' && !known) continue;
      live.set(key(line.resource), {...known, ...line.resource});
    } else if (line.op === 'forget') live.delete(key(line.resource));
  }
  return {path, runId: header?.runId ?? runId, ...(header ? {header} : {}), live: [...live.values()], ownerAlive: header ? await ownerAlive(header.owner) : false, torn: text !== '' && !text.endsWith('\n')};
}

/** Appends `forget` lines to another run's journal (gc), and removes it when nothing is left live. */
export async function forgetInJournal(file: JournalFile, resources: readonly Resource[]): Promise<void> {
  const handle = await open(file.path, 'a');
  try {
    if (file.torn) {
      await handle.appendFile('\n');
      file.torn = false;
    }
    for (const r of resources) {
      await handle.appendFile(`${JSON.stringify({op: 'forget', time: new Date().toISOString(), resource: {provider: r.provider, kind: r.kind, id: r.id}})}\n`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  const gone = new Set(resources.map(key));
  file.live = file.live.filter((r) => !gone.has(key(r)));
  if (file.live.length === 0) await removeJournal(file);
}

export async function removeJournal(file: JournalFile): Promise<void> {
  await unlink(file.path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await syncDir(join(file.path, '..'));
}

async function currentOwner(): Promise<JournalOwner> {
  const startTicks = await processStartTicks(process.pid);
  const bootId = await readBootId();
  return {pid: process.pid, ...(startTicks ? {startTicks} : {}), ...(bootId ? {bootId} : {}), host: hostname()};
}

/** Whether the process that wrote a journal still runs (this host; same boot; same pid and start time). */
export async function ownerAlive(owner: JournalOwner): Promise<boolean> {
  if (owner.host !== hostname()) return true; // not ours to judge: a journal on shared storage
  const bootId = await readBootId();
  if (owner.bootId && bootId && owner.bootId !== bootId) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (!owner.startTicks) return true;
  const ticks = await processStartTicks(owner.pid);
  return ticks === undefined ? true : ticks === owner.startTicks;
}

async function processStartTicks(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

async function readBootId(): Promise<string | undefined> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => ''))?.trim() || undefined;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}
