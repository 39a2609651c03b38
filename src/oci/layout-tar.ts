// Tar for OCI layout archives (`cache export` writes them, `cache import` reads them).
// Writing: a minimal ustar writer (regular files and directories, a PAX path record for
// names longer than ustar holds), streaming file bodies. Reading: tar-stream, which copes
// with whatever skopeo, Docker or LinuxKit produced.
import {createRequire} from 'node:module';
import type {Readable, Writable} from 'node:stream';
import {TskitError} from '../errors.ts';

const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, type: '0' | '5' | 'x', mode: number, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(mtime, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + ' ', 148, 'ascii');
  return block;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return Buffer.from(`${length}${body}`);
}

function padding(size: number): Buffer {
  return ZEROS.subarray(0, (BLOCK - (size % BLOCK)) % BLOCK);
}

/** Writes tar members one after the other to a Node writable, honouring backpressure. */
export class LayoutTarWriter {
  private readonly out: Writable;
  private readonly mtime: number;

  constructor(out: Writable, mtime = 0) {
    this.out = out;
    this.mtime = mtime;
  }

  private async write(chunk: Buffer): Promise<void> {
    if (!this.out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => {
          this.out.off('drain', onDrain);
          reject(error);
        };
        const onDrain = () => {
          this.out.off('error', onError);
          resolve();
        };
        this.out.once('drain', onDrain);
        this.out.once('error', onError);
      });
    }
  }

  private async head(name: string, size: number, type: '0' | '5', mode: number): Promise<void> {
    if (Buffer.byteLength(name) > 99) {
      const pax = paxRecord('path', name);
      await this.write(header('PaxHeader', pax.length, 'x', 0o644, this.mtime));
      await this.write(pax);
      await this.write(padding(pax.length));
      name = name.slice(-99);
    }
    await this.write(header(name, size, type, mode, this.mtime));
  }

  async directory(name: string): Promise<void> {
    await this.head(name.endsWith('/') ? name : `${name}/`, 0, '5', 0o755);
  }

  async file(name: string, content: Buffer): Promise<void> {
    await this.head(name, content.length, '0', 0o644);
    await this.write(content);
    await this.write(padding(content.length));
  }

  /** A file whose `size` bytes come from a stream (checked: a short or long stream is an error). */
  async streamFile(name: string, size: number, content: AsyncIterable<Uint8Array>): Promise<void> {
    await this.head(name, size, '0', 0o644);
    let written = 0;
    for await (const chunk of content) {
      written += chunk.length;
      if (written > size) throw new TskitError(`${name} is longer than the ${size} bytes recorded for it`);
      await this.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    }
    if (written !== size) throw new TskitError(`${name} has ${written} bytes, not the ${size} recorded for it`);
    await this.write(padding(size));
  }

  async finish(): Promise<void> {
    await this.write(ZEROS);
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}

export interface TarMember {
  name: string;
  type: string;
  size: number;
  /** The member's bytes; must be read to the end (or drained) before the next member comes. */
  content: AsyncIterable<Buffer>;
}

interface TarStreamEntry extends AsyncIterable<Buffer> {
  header: {name: string; type: string; size?: number};
  resume(): void;
}
interface TarStreamExtract extends AsyncIterable<TarStreamEntry> {
  destroy(error?: Error): void;
}
const tarStream = createRequire(import.meta.url)('tar-stream') as {extract(options?: object): TarStreamExtract & Writable};

/** Reads tar members from a stream, in order. */
export async function* readTarMembers(input: Readable): AsyncGenerator<TarMember> {
  const extract = tarStream.extract();
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract as unknown as Writable);
  for await (const entry of extract) {
    let consumed = false;
    const content = (async function* () {
      consumed = true;
      for await (const chunk of entry) yield chunk;
    })();
    yield {name: entry.header.name, type: entry.header.type, size: entry.header.size ?? 0, content};
    if (!consumed) {
      for await (const _chunk of entry) {
        // drain
      }
    }
  }
}
