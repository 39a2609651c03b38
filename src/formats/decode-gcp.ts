// Reads GCE's image tarball (`disk.raw` in a gzip'd tar) as a DiskImage, streaming: the
// archive is inflated front to back and the member's bytes become extents, zero stretches
// dropped. Plain members and GNU's old sparse members (what GCE's documented
// `tar --format=oldgnu -Sczf` writes) are read; PAX and GNU long-name records before the
// member are honoured within size limits. There is no random access into gzip: readAt
// inflates again from the start, keeping the neighbourhood of what it read (the boot probe
// reads a few places near each other).
import {Readable} from 'node:stream';
import {createGunzip} from 'node:zlib';
import {isZero} from './blocks.ts';
import {describeBytes, type DiskExtent, type DiskImage} from './disk.ts';
import type {DiskFile} from './decode-mapped.ts';

const BLOCK = 512;
const CHUNK = 4 * 1024 * 1024;
const PIECE = 64 * 1024;
/** GCE's disks are at most 64 TiB (Persistent Disk and Hyperdisk). */
export const GCP_MAX_DISK = 64 * 2 ** 40;
/** Limits on what precedes the member: records, a PAX header's size, a long name's size, sparse map entries. */
const MAX_RECORDS = 64;
const MAX_PAX = 1024 * 1024;
const MAX_LONG_NAME = 64 * 1024;
const MAX_SPARSE_ENTRIES = 1024 * 1024;

interface Member {
  /** Bytes of the disk (the sparse file's real size). */
  size: number;
  /** Data regions (virtual offset, bytes), in the order stored; one region for a plain member. */
  regions: Array<{offset: number; length: number}>;
  /** Stored bytes of the member (the sum of the regions). */
  stored: number;
}

/** The compressed file as a byte stream, read in 1 MiB pieces. */
async function* compressedBytes(disk: DiskFile): AsyncGenerator<Buffer> {
  for (let at = 0; at < disk.size; ) {
    const n = Math.min(1024 * 1024, disk.size - at);
    yield await disk.read(at, n, 'gzip stream');
    at += n;
  }
}

/** Reads exact byte counts from the inflated stream. */
class InflatedReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private readonly disk: DiskFile;
  /** Inflated bytes consumed so far (for messages). */
  position = 0;

  constructor(disk: DiskFile) {
    this.disk = disk;
    const gunzip = createGunzip({chunkSize: 256 * 1024});
    const source = Readable.from(compressedBytes(disk));
    source.on('error', (error) => gunzip.destroy(error));
    this.iterator = source.pipe(gunzip)[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Up to `max` bytes (at least one), or undefined at the end of the stream. */
  async some(max: number): Promise<Buffer | undefined> {
    if (this.pending.length === 0) {
      let next: IteratorResult<Buffer>;
      try {
        next = await this.iterator.next();
      } catch (error) {
        if ((error as {name?: string}).name === 'TskitError') throw error;
        throw this.disk.corrupt(`the gzip stream is damaged (${(error as Error).message}) after ${this.position} inflated bytes`);
      }
      if (next.done) return undefined;
      this.pending = next.value;
    }
    const out = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(out.length);
    this.position += out.length;
    return out;
  }

  async exactly(length: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < length) {
      const part = await this.some(length - got);
      if (!part) throw this.disk.corrupt(`the archive ends inside ${what} (at inflated byte ${this.position})`);
      parts.push(part);
      got += part.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  }

  async skip(length: number, what: string): Promise<void> {
    for (let left = length; left > 0; ) {
      const part = await this.some(Math.min(left, CHUNK));
      if (!part) throw this.disk.corrupt(`the archive ends inside ${what} (at inflated byte ${this.position})`);
      left -= part.length;
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

function octal(disk: DiskFile, field: Buffer, what: string): number {
  if (field[0]! & 0x80) {
    // base-256 (GNU): big-endian, the top bit of the first byte set
    let value = BigInt(field[0]! & 0x7f);
    for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw disk.corrupt(`${what} is ${value}, beyond any disk size`);
    return Number(value);
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw disk.corrupt(`${what} "${text}" is not an octal number`);
  const value = Number.parseInt(text, 8);
  if (!Number.isSafeInteger(value)) throw disk.corrupt(`${what} is ${text} (octal), beyond any disk size`);
  return value;
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  const stored = Number.parseInt(header.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
  return stored === sum;
}

/** Reads records up to the disk.raw member's data; returns what it holds. */
async function readMember(disk: DiskFile, reader: InflatedReader): Promise<Member> {
  let longName: string | undefined;
  let paxSize: number | undefined;
  for (let record = 0; record < MAX_RECORDS; record++) {
    const at = reader.position;
    const header = await reader.exactly(BLOCK, 'a tar header');
    if (isZero(header)) throw disk.corrupt(`the archive ends (at inflated byte ${at}) without a disk.raw member`);
    if (!checksumOk(header)) throw disk.corrupt(`the tar header at inflated byte ${at} has a wrong checksum: this is not a tar archive, or it is damaged`);
    const type = String.fromCharCode(header[156]!);
    const size = octal(disk, header.subarray(124, 136), `the size of the tar record at inflated byte ${at}`);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      if (size > MAX_LONG_NAME) throw disk.corrupt(`the GNU long name at inflated byte ${at} claims ${size} bytes (at most ${MAX_LONG_NAME})`);
      longName = (await reader.exactly(padded, 'a GNU long name')).toString('utf8', 0, size).replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x' || type === 'g') {
      if (size > MAX_PAX) throw disk.corrupt(`the PAX header at inflated byte ${at} claims ${size} bytes (at most ${MAX_PAX})`);
      const text = (await reader.exactly(padded, 'a PAX header')).toString('utf8', 0, size);
      if (type === 'x') {
        for (const line of text.split('\n')) {
          const match = /^\d+ ([^=]+)=(.*)$/s.exec(line);
          if (!match) continue;
          if (match[1] === 'path') longName = match[2];
          if (match[1] === 'size') paxSize = Number(match[2]);
          if (match[1]!.startsWith('GNU.sparse.')) throw disk.unsupported(`the member is a PAX sparse file (GNU.sparse records at inflated byte ${at}); write the tarball with tar --format=oldgnu -S, or without -S`);
        }
      }
      continue;
    }
    // a POSIX ustar header ("ustar\0") may put a directory prefix at byte 345; GNU's ("ustar  ") keeps other fields there
    const prefix = header.toString('latin1', 257, 263) === 'ustar\0' ? header.toString('utf8', 345, 500).replace(/\0.*$/s, '') : '';
    const name = (longName ?? (prefix ? `${prefix}/` : '') + header.toString('utf8', 0, 100).replace(/\0.*$/s, '')).replace(/^(\.\/)+/, '');
    const memberSize = paxSize ?? size;
    longName = undefined;
    paxSize = undefined;
    if (name !== 'disk.raw') {
      if (type === '0' || type === '\0' || type === 'S') throw disk.unsupported(`the archive's first file is ${JSON.stringify(name)} (at inflated byte ${at}); a GCE image tarball holds disk.raw`);
      await reader.skip(Math.ceil(memberSize / BLOCK) * BLOCK, `the record of ${name}`);
      continue;
    }
    if (type === '0' || type === '\0' || type === '7') return {size: memberSize, regions: memberSize > 0 ? [{offset: 0, length: memberSize}] : [], stored: memberSize};
    if (type !== 'S') throw disk.unsupported(`disk.raw (at inflated byte ${at}) is a tar entry of type "${type}", not a file`);
    // GNU old sparse: four map entries in the header, more in extension blocks
    const regions: Member['regions'] = [];
    const take = (block: Buffer, from: number, count: number, where: number): void => {
      for (let i = 0; i < count; i++) {
        const entry = from + i * 24;
        if (block[entry] === 0) return;
        const offset = octal(disk, block.subarray(entry, entry + 12), `a sparse map offset (inflated byte ${where + entry})`);
        const length = octal(disk, block.subarray(entry + 12, entry + 24), `a sparse map length (inflated byte ${where + entry + 12})`);
        if (regions.length >= MAX_SPARSE_ENTRIES) throw disk.corrupt(`disk.raw's sparse map has more than ${MAX_SPARSE_ENTRIES} entries`);
        const previous = regions.at(-1);
        if (offset % BLOCK !== 0 || (previous && offset < previous.offset + previous.length)) throw disk.corrupt(`disk.raw's sparse map entry at inflated byte ${where + entry} (offset ${offset}) is not 512-aligned after the one before it`);
        regions.push({offset, length});
      }
    };
    take(header, 386, 4, at);
    const realSize = octal(disk, header.subarray(483, 495), `disk.raw's real size (inflated byte ${at + 483})`);
    for (let extended = header[482] !== 0; extended; ) {
      const where = reader.position;
      const block = await reader.exactly(BLOCK, 'a sparse map extension');
      take(block, 0, 21, where);
      extended = block[504] !== 0;
    }
    const stored = regions.reduce((sum, r) => sum + r.length, 0);
    if (stored !== memberSize) throw disk.corrupt(`disk.raw's sparse map lists ${stored} bytes, its record holds ${memberSize}`);
    const last = regions.at(-1);
    if (last && last.offset + last.length > realSize) throw disk.corrupt(`disk.raw's sparse map reaches byte ${last.offset + last.length}, past its real size ${realSize}`);
    return {size: realSize, regions: regions.filter((r) => r.length > 0), stored};
  }
  throw disk.corrupt(`no disk.raw among the archive's first ${MAX_RECORDS} records`);
}

/** Cuts sequential (virtual offset, bytes) pieces into extents of whole sectors, zero 64 KiB pieces dropped. */
async function* toExtents(pieces: AsyncIterable<{offset: number; data: Buffer}>): AsyncGenerator<DiskExtent> {
  let chunk: Buffer | undefined;
  let chunkStart = 0;
  let filled = 0;
  const flush = function* (): Generator<DiskExtent> {
    if (!chunk || filled === 0) return;
    const used = chunk.subarray(0, Math.ceil(filled / BLOCK) * BLOCK);
    used.fill(0, filled);
    let start = -1;
    for (let p = 0; ; p += PIECE) {
      const end = Math.min(p + PIECE, used.length);
      const data = p < used.length && !isZero(used.subarray(p, end));
      if (data && start < 0) start = p;
      if (!data && start >= 0) {
        yield {offset: chunkStart + start, data: Buffer.from(used.subarray(start, Math.min(p, used.length)))};
        start = -1;
      }
      if (p >= used.length) break;
    }
    filled = 0;
  };
  for await (const {offset, data} of pieces) {
    for (let at = 0; at < data.length; ) {
      const position = offset + at;
      if (!chunk || position !== chunkStart + filled || filled === CHUNK) {
        yield* flush();
        chunk ??= Buffer.allocUnsafeSlow(CHUNK);
        // chunks start on sector boundaries (regions do), so extents are whole sectors
        chunkStart = position;
      }
      const n = Math.min(CHUNK - filled, data.length - at);
      data.copy(chunk, filled, at, at + n);
      filled += n;
      at += n;
    }
  }
  yield* flush();
}

export interface GcpTarball {
  image: DiskImage;
  readAt(offset: number, length: number): Promise<Buffer>;
  variant: string;
}

export async function gcpTarball(disk: DiskFile, signal?: AbortSignal): Promise<GcpTarball> {
  const first = new InflatedReader(disk);
  let member: Member;
  try {
    member = await readMember(disk, first);
  } finally {
    await first.close();
  }
  if (member.size > GCP_MAX_DISK) throw disk.corrupt(`disk.raw is ${member.size} bytes, beyond GCE's largest disk (${describeBytes(GCP_MAX_DISK)})`);
  const size = Math.ceil(member.size / BLOCK) * BLOCK;
  const extents = async function* (): AsyncGenerator<DiskExtent> {
    const reader = new InflatedReader(disk);
    try {
      await readMember(disk, reader);
      const pieces = async function* (): AsyncGenerator<{offset: number; data: Buffer}> {
        for (const region of member.regions) {
          for (let done = 0; done < region.length; ) {
            signal?.throwIfAborted();
            const data = await reader.some(Math.min(CHUNK, region.length - done));
            if (!data) throw disk.corrupt(`the archive ends inside disk.raw (at inflated byte ${reader.position}, ${region.offset + done} bytes into the disk)`);
            yield {offset: region.offset + done, data};
            done += data.length;
          }
        }
      };
      yield* toExtents(pieces());
    } finally {
      await reader.close();
    }
  };
  // readAt: the pieces near the last reads, kept (at most 16 MiB)
  const cache = new Map<number, Buffer | null>();
  const WINDOW = 8 * 1024 * 1024;
  const readAt = async (offset: number, length: number): Promise<Buffer> => {
    const out = Buffer.alloc(length);
    const end = Math.min(offset + length, size);
    const firstPiece = Math.floor(offset / PIECE);
    const lastPiece = Math.floor((Math.max(offset, end - 1)) / PIECE);
    const cached = (): boolean => {
      for (let p = firstPiece; p <= lastPiece; p++) if (!cache.has(p)) return false;
      return true;
    };
    if (offset < end && !cached()) {
      if (cache.size > 256) cache.clear();
      const from = Math.max(0, offset - WINDOW);
      const to = end + WINDOW;
      for (let p = Math.floor(from / PIECE); p * PIECE < Math.min(to, size); p++) cache.set(p, null);
      for await (const extent of extents()) {
        if (extent.offset >= to) break;
        const extentEnd = extent.offset + extent.data.length;
        for (let p = Math.floor(extent.offset / PIECE); p * PIECE < extentEnd; p++) {
          if (!cache.has(p)) continue;
          const piece = cache.get(p) ?? Buffer.alloc(PIECE);
          const from2 = Math.max(p * PIECE, extent.offset);
          const to2 = Math.min((p + 1) * PIECE, extentEnd);
          extent.data.copy(piece, from2 - p * PIECE, from2 - extent.offset, to2 - extent.offset);
          cache.set(p, piece);
        }
      }
    }
    for (let at = offset; at < end; ) {
      const p = Math.floor(at / PIECE);
      const n = Math.min(end - at, (p + 1) * PIECE - at);
      cache.get(p)?.copy(out, at - offset, at - p * PIECE, at - p * PIECE + n);
      at += n;
    }
    return out;
  };
  return {image: {size, extents}, readAt, variant: member.regions.length === 1 && member.regions[0]!.length === member.size ? 'plain' : 'sparse'};
}
