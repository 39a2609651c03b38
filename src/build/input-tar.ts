// `tskit build --input-tar OLD.tar`, as LinuxKit's: a previous build's tar stands in for every
// part of the configuration that has not changed, so only the changed parts are pulled and
// assembled again. The old configuration is the one the tar itself carries (the file a
// `files:` entry with `metadata:` wrote, at the path the new configuration names); each entry
// of the tar says which part it came from (LinuxKit's LINUXKIT.location PAX record).
// A part is taken from the tar when it is the same as before, judged more strictly than
// LinuxKit does (it compares image references only): the kernel section as a whole (and
// whether --decompress-kernel is asked the same), the init list as a whole (init images are
// flattened together, so one changed image rebuilds all), each volume, and each container
// with its uid/gid map, the volumes it may bind and the container whose root it shares.
// `files:` are always written again.
import {createReadStream} from 'node:fs';
import {isDeepStrictEqual} from 'node:util';
import {checkSources} from '../config/load.ts';
import {containerIdMap} from '../config/ids.ts';
import {isError} from '../config/problems.ts';
import type {ImageEntry, MobyConfig, Section} from '../config/types.ts';
import {TskitError} from '../errors.ts';
import {drain, type Entry} from './entry.ts';
import {normalizeImagePath} from './image-path.ts';
import {readTar} from './tar/reader.ts';

const SECTIONS: Section[] = ['onboot', 'onshutdown', 'services'];

export interface Reuse {
  /** Parts taken from the input tar: 'kernel', 'init', 'volume[i]', 'onboot[i]', ... */
  readonly parts: ReadonlySet<string>;
  /** The entries of one part, in the tar's order (call in assembly order: the tar is read once). */
  entries(part: string): AsyncGenerator<Entry>;
  close(): Promise<void>;
}

export interface ReusePlan {
  parts: ReadonlySet<string>;
  /** A reader for one assembly (each output format assembles the image again). */
  open(): Reuse;
}

/** Works out what can be reused; no plan (with the reason) when nothing can. */
export async function planReuse(path: string, config: MobyConfig, decompressKernel: boolean): Promise<{plan?: ReusePlan; note: string}> {
  const metadataPath = [...(config.files ?? [])].reverse().find((f) => f.metadata)?.path;
  if (!metadataPath) return {note: `--input-tar ${path}: nothing reused: the configuration has no files: entry with metadata:, so the tar cannot say what it was built from`};
  const wanted = normalizeImagePath(metadataPath, 'files');
  let oldText: string | undefined;
  let kernelHead: Buffer | undefined;
  for await (const entry of readTar(openTar(path), path)) {
    const name = normalizeImagePath(entry.path, path);
    if (name === wanted && entry.type === 'file') oldText = await text(entry);
    else if (name === 'boot/kernel' && entry.type === 'file') kernelHead = await head(entry, 0x210);
    else await drain(entry);
  }
  if (oldText === undefined) return {note: `--input-tar ${path}: nothing reused: it has no /${wanted} (built from another configuration, or without metadata:)`};
  const {loaded, problems} = checkSources([{name: `${path}:/${wanted}`, text: oldText}]);
  const errors = problems.filter(isError);
  if (errors.length > 0) throw new TskitError(`--input-tar ${path}: the configuration it carries in /${wanted} is not valid: ${errors[0]!.message}`);
  const parts = reusableParts(loaded.config, config, decompressKernel === decompressedKernel(kernelHead));
  if (parts.size === 0) return {note: `--input-tar ${path}: nothing reused: every part of the configuration changed`};
  return {plan: {parts, open: () => new TarCursor(path, parts)}, note: `--input-tar ${path}: reusing ${[...parts].join(', ')}`};
}

/** The parts of `now` that are as they were in `before`. */
export function reusableParts(before: MobyConfig, now: MobyConfig, kernelModeSame = true): Set<string> {
  const parts = new Set<string>();
  if (now.kernel?.image && kernelModeSame && isDeepStrictEqual(before.kernel, now.kernel)) parts.add('kernel');
  if ((now.init ?? []).length > 0 && isDeepStrictEqual(before.init ?? [], now.init ?? [])) parts.add('init');
  for (const [i, volume] of (now.volumes ?? []).entries()) {
    if (volume.image && isDeepStrictEqual(before.volumes?.[i], volume)) parts.add(`volume[${i}]`);
  }
  const sameIds = isDeepStrictEqual([...containerIdMap(before)], [...containerIdMap(now)]);
  const sameVolumes = isDeepStrictEqual(before.volumes ?? [], now.volumes ?? []);
  if (sameIds && sameVolumes) {
    const ownersBefore = rootOwners(before);
    const ownersNow = rootOwners(now);
    for (const section of SECTIONS) {
      for (const [i, entry] of (now[section] ?? []).entries()) {
        const part = `${section}[${i}]`;
        if (isDeepStrictEqual(before[section]?.[i], entry) && ownersBefore.get(part) === ownersNow.get(part)) parts.add(part);
      }
    }
  }
  return parts;
}

/** For each container, the container holding the root filesystem it uses (itself or an earlier one of the same image). */
function rootOwners(config: MobyConfig): Map<string, string> {
  const first = new Map<string, {part: string; entry: ImageEntry}>();
  const owners = new Map<string, string>();
  for (const section of SECTIONS) {
    for (const [i, entry] of (config[section] ?? []).entries()) {
      const part = `${section}[${i}]`;
      if (!first.has(entry.image)) first.set(entry.image, {part, entry});
      owners.set(part, JSON.stringify(first.get(entry.image)));
    }
  }
  return owners;
}

/** A kernel that is neither a gzip stream nor a bzImage was written decompressed. */
function decompressedKernel(head: Buffer | undefined): boolean {
  if (!head || head.length < 2) return false;
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const bzImage = head.length >= 0x206 && head.subarray(0x202, 0x206).toString('latin1') === 'HdrS';
  return !gzip && !bzImage;
}

/** Assembly order of a part: the tar lists them in this order too. */
function rank(location: string): number[] | undefined {
  const m = /^(kernel|init|volume|onboot|onshutdown|services|files)(?:\[(\d+)\])?$/.exec(location);
  if (!m) return undefined;
  const group = ['kernel', 'init', 'volume', 'onboot', 'onshutdown', 'services', 'files'].indexOf(m[1]!);
  // init images are one part: their entries are flattened together
  return [group, m[1] === 'init' ? 0 : Number(m[2] ?? 0)];
}

function compare(a: number[], b: number[]): number {
  return a[0]! - b[0]! || a[1]! - b[1]!;
}

/** Reads the tar once, front to back, handing out each reused part's entries as assembly asks. */
class TarCursor implements Reuse {
  readonly parts: ReadonlySet<string>;
  private readonly reader: AsyncGenerator<Entry>;
  private readonly path: string;
  private peeked: Entry | undefined;
  private done = false;

  constructor(path: string, parts: Set<string>) {
    this.path = path;
    this.parts = parts;
    this.reader = readTar(openTar(path), path);
  }

  async *entries(part: string): AsyncGenerator<Entry> {
    const target = rank(part)!;
    let found = false;
    for (;;) {
      const entry = this.peeked ?? (this.done ? undefined : await this.next());
      this.peeked = undefined;
      if (!entry) break;
      const location = entry.pax?.['LINUXKIT.location'];
      const at = location === undefined ? undefined : rank(location);
      // entries with no part (the directories assembly adds above the parts) are made again
      if (!at || compare(at, target) < 0) {
        await drain(entry);
        continue;
      }
      if (compare(at, target) > 0) {
        this.peeked = entry;
        break;
      }
      found = true;
      const out: Entry = {...entry, path: normalizeImagePath(entry.path, this.path)};
      if (entry.type === 'hardlink') out.linkname = normalizeImagePath(entry.linkname ?? '', this.path);
      if (out.path === '') {
        await drain(entry);
        continue;
      }
      yield out;
    }
    if (!found) throw new TskitError(`--input-tar ${this.path}: it has no entries for ${part}, though its configuration has that part (was it made by another tool?)`);
  }

  private async next(): Promise<Entry | undefined> {
    const r = await this.reader.next();
    if (r.done) {
      this.done = true;
      return undefined;
    }
    return r.value;
  }

  async close(): Promise<void> {
    await this.reader.return(undefined);
  }
}

function openTar(path: string): AsyncIterable<Uint8Array> {
  const stream = createReadStream(path, {highWaterMark: 1 << 20});
  stream.on('error', () => {}); // surfaced by the reader's iteration
  return (async function* () {
    try {
      yield* stream as AsyncIterable<Buffer>;
    } catch (error) {
      throw new TskitError(`--input-tar ${path}: cannot read it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  })();
}

async function text(entry: Entry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry.content ?? []) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function head(entry: Entry, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of entry.content ?? []) {
    if (got < n) {
      chunks.push(Buffer.from(chunk.subarray(0, n - got)));
      got += Math.min(chunk.length, n - got);
    }
  }
  return Buffer.concat(chunks);
}
