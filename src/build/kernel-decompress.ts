// `--decompress-kernel`, as LinuxKit's build does it: a kernel that is a gzip stream (arm64's
// Image.gz) is gunzip'd; an x86 bzImage (boot protocol 2.08+) gives up the compressed payload
// its header points at, decompressed. LinuxKit reads only gzip payloads; tskit also reads the
// LZ4 (the kernel's legacy LZ4 framing: Debian's kernels) and zstd payloads. The result is
// written to a scratch file (its size must be known before the entry is), never held whole.
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdtemp, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import * as zlib from 'node:zlib';
import {TskitError} from '../errors.ts';
import type {Entry} from './entry.ts';

const GZIP = Buffer.from([0x1f, 0x8b]);
const LZ4_LEGACY = 0x184c2102;
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const BZ_MIN_LENGTH = 0x250;

/** The kernel entry with its content replaced by the decompressed kernel. */
export async function decompressedKernel(entry: Entry, what: string): Promise<Entry> {
  const dir = await mkdtemp(join(tmpdir(), 'tskit-kernel-'));
  const path = join(dir, 'kernel');
  try {
    await decompressKernelTo(entry.content ?? [], path, what);
    const {size} = await stat(path);
    const content = (async function* () {
      try {
        yield* createReadStream(path) as AsyncIterable<Buffer>;
      } finally {
        await rm(dir, {recursive: true, force: true});
      }
    })();
    return {...entry, size, content};
  } catch (error) {
    await rm(dir, {recursive: true, force: true});
    throw error;
  }
}

export async function decompressKernelTo(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, path: string, what: string): Promise<void> {
  const reader = new Pieces(source);
  const head = await reader.readUpTo(BZ_MIN_LENGTH + 1);
  if (head.subarray(0, 2).equals(GZIP)) {
    await inflate(concat(head, reader), 'gzip', path, what);
    return;
  }
  if (head.length > BZ_MIN_LENGTH && head.readUInt16LE(0x1fe) === 0xaa55 && head.subarray(0x202, 0x206).toString('latin1') === 'HdrS') {
    const version = head.readUInt16LE(0x206);
    if (version < 0x208) throw new TskitError(`${what}: bzImage boot protocol ${version >> 8}.${version & 0xff} has no payload pointer (2.08 or later is needed)`);
    const setupSectors = head[0x1f1]! || 4;
    const payloadOffset = head.readUInt32LE(0x248) + (setupSectors + 1) * 512;
    const payloadLength = head.readUInt32LE(0x24c);
    if (payloadOffset < head.length) throw new TskitError(`${what}: bzImage payload offset ${payloadOffset} lies inside its header`);
    const skipped = await reader.readUpTo(payloadOffset - head.length);
    const payload = await reader.readUpTo(payloadLength);
    if (skipped.length + head.length < payloadOffset || payload.length < payloadLength) {
      throw new TskitError(`${what}: the bzImage payload (${payloadLength} bytes at ${payloadOffset}) runs past the end of the kernel`);
    }
    const magic = payload.subarray(0, 6);
    const rest = (async function* () {
      yield payload;
    })();
    if (magic.subarray(0, 2).equals(GZIP)) await inflate(rest, 'gzip', path, what);
    else if (magic.subarray(0, 4).equals(ZSTD)) await inflate(rest, 'zstd', path, what);
    else if (magic.length >= 4 && magic.readUInt32LE(0) === LZ4_LEGACY) await pipeline(Readable.from(lz4Legacy(rest, what)), createWriteStream(path));
    else if (magic.equals(XZ)) throw new TskitError(`${what}: the bzImage payload at byte ${payloadOffset} is xz-compressed, which --decompress-kernel does not read (gzip, lz4 and zstd are read)`);
    else throw new TskitError(`${what}: unsupported bzImage payload format at byte ${payloadOffset} (magic ${magic.subarray(0, 4).toString('hex')})`);
    return;
  }
  throw new TskitError(`${what}: --decompress-kernel found no compressed kernel (neither a gzip stream nor a bzImage)`);
}

/** A byte stream read in pieces of at most a given size (the pieces are slices of its chunks). */
class Pieces {
  private readonly source: AsyncIterator<Uint8Array>;
  private pending: Buffer | undefined;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.source = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (async function* () {
      yield* source;
    })();
  }

  private async next(max: number): Promise<Buffer | undefined> {
    while (!this.pending || this.pending.length === 0) {
      const next = await this.source.next();
      if (next.done) return undefined;
      this.pending = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    }
    const piece = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(piece.length);
    return piece;
  }

  /** Up to n bytes: fewer only at the end of the stream. */
  async readUpTo(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const piece = await this.next(n - got);
      if (!piece) break;
      parts.push(piece);
      got += piece.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  async *rest(): AsyncGenerator<Buffer> {
    for (;;) {
      const piece = await this.next(1 << 20);
      if (!piece) return;
      yield piece;
    }
  }
}

async function* concat(head: Buffer, reader: Pieces): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  yield* reader.rest();
}

async function inflate(source: AsyncIterable<Buffer>, kind: 'gzip' | 'zstd', path: string, what: string): Promise<void> {
  try {
    // the kernel build appends the uncompressed size after the gzip/zstd stream: trailing bytes are ignored
    // zstd arrived in Node 22.15: looked up at run time so older Node 22 still loads tskit
    const zstd = (zlib as {createZstdDecompress?: () => NodeJS.ReadWriteStream}).createZstdDecompress;
    if (kind === 'zstd' && !zstd) throw new TskitError(`${what}: reading a zstd kernel needs Node 22.15 or later`);
    const decoder = kind === 'gzip' ? zlib.createGunzip({finishFlush: zlib.constants.Z_SYNC_FLUSH}) : zstd!();
    await pipeline(Readable.from(source), decoder, createWriteStream(path));
  } catch (error) {
    if (error instanceof TskitError) throw error;
    throw new TskitError(`${what}: the kernel's ${kind} data is damaged: ${(error as Error).message}`);
  }
}

/**
 * The kernel's legacy LZ4 framing: the magic, then blocks of (32-bit size, LZ4 block) that each
 * decompress on their own to at most 8 MiB; the build appends the uncompressed size after the
 * last block, which reads as a block size larger than what is left.
 */
async function* lz4Legacy(source: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const reader = new Pieces(source);
  const magic = await reader.readUpTo(4);
  if (magic.length < 4 || magic.readUInt32LE(0) !== LZ4_LEGACY) throw new TskitError(`${what}: not an LZ4 legacy stream`);
  for (;;) {
    const sizeField = await reader.readUpTo(4);
    if (sizeField.length < 4) return;
    const size = sizeField.readUInt32LE(0);
    if (size === LZ4_LEGACY) continue;
    const block = await reader.readUpTo(size);
    if (block.length === 0) return; // that was the uncompressed size the build appends
    if (block.length < size) throw new TskitError(`${what}: LZ4 block of ${size} bytes is truncated (${block.length} left)`);
    yield lz4Block(block, 8 << 20, what);
  }
}

/** Decodes one LZ4 block (sequences of literals and back-references). */
export function lz4Block(input: Buffer, maxOutput: number, what: string): Buffer {
  const out = Buffer.allocUnsafe(maxOutput);
  let ip = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new TskitError(`${what}: LZ4 data is damaged (${why} at input byte ${ip})`);
  };
  while (ip < input.length) {
    const token = input[ip++]!;
    let literals = token >> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (ip >= input.length) fail('literal length runs past the block');
        b = input[ip++]!;
        literals += b;
      } while (b === 255);
    }
    if (ip + literals > input.length || op + literals > maxOutput) fail('literals run past the block');
    input.copy(out, op, ip, ip + literals);
    ip += literals;
    op += literals;
    if (ip >= input.length) break; // the last sequence has literals only
    if (ip + 2 > input.length) fail('offset runs past the block');
    const offset = input[ip]! | (input[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail(`back-reference ${offset} before the start`);
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip >= input.length) fail('match length runs past the block');
        b = input[ip++]!;
        length += b;
      } while (b === 255);
    }
    if (op + length > maxOutput) fail('output exceeds the block size');
    let from = op - offset;
    if (offset >= length) {
      out.copy(out, op, from, from + length);
      op += length;
    } else {
      for (let i = 0; i < length; i++) out[op++] = out[from++]!;
    }
  }
  return out.subarray(0, op);
}
