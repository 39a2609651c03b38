// Reading config sources: file paths, "-" for stdin (read once), and https URLs (plain http
// only for loopback hosts, so a config cannot be swapped on the wire). Errors name the source.
import {readFile} from 'node:fs/promises';
import {TskitError} from '../errors.ts';

export const STDIN_NAME = '<stdin>';
/** Config files are small; this bound keeps a wrong URL or device from filling memory. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

export interface SourceText {
  /** How problems name it: the path or URL as given, or "<stdin>". */
  name: string;
  text: string;
}

export interface ReadOptions {
  stdin?: NodeJS.ReadableStream;
  fetchTimeoutMs?: number;
}

function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s);
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function decode(name: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(bytes);
  } catch {
    throw new TskitError(`${name}: not UTF-8 text`);
  }
}

async function readStream(name: string, stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > MAX_CONFIG_BYTES) throw new TskitError(`${name}: larger than ${MAX_CONFIG_BYTES} bytes, not a config file`);
    chunks.push(b);
  }
  return decode(name, Buffer.concat(chunks));
}

async function fetchText(source: string, timeoutMs: number): Promise<string> {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new TskitError(`${source}: not a valid URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new TskitError(`${source}: only https:// URLs are fetched (plain http:// only from localhost)`);
  }
  let res: Response;
  try {
    res = await fetch(url, {signal: AbortSignal.timeout(timeoutMs), redirect: 'follow'});
  } catch (err) {
    const e = err as Error;
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message);
    throw new TskitError(`${source}: cannot fetch: ${why}`, {cause: err});
  }
  // a redirect must not downgrade to plain http either
  const final = new URL(res.url || url.href);
  if (final.protocol !== 'https:' && !(final.protocol === 'http:' && isLoopback(final.hostname))) {
    await res.body?.cancel();
    throw new TskitError(`${source}: redirected to ${final.href}, which is not https`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new TskitError(`${source}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_CONFIG_BYTES) {
    await res.body?.cancel();
    throw new TskitError(`${source}: larger than ${MAX_CONFIG_BYTES} bytes, not a config file`);
  }
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      if (size > MAX_CONFIG_BYTES) throw new TskitError(`${source}: larger than ${MAX_CONFIG_BYTES} bytes, not a config file`);
      chunks.push(chunk);
    }
    return decode(source, Buffer.concat(chunks));
  } catch (err) {
    if (err instanceof TskitError) throw err;
    const e = err as Error;
    throw new TskitError(`${source}: reading the response failed: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.message}`, {cause: err});
  }
}

/** Reads every source; "-" may appear once. Throws TskitError naming the source. */
export async function readSources(sources: string[], opts: ReadOptions = {}): Promise<SourceText[]> {
  if (sources.filter((s) => s === '-').length > 1) throw new TskitError('"-" (stdin) can be given only once');
  const out: SourceText[] = [];
  for (const source of sources) {
    if (source === '-') {
      out.push({name: STDIN_NAME, text: await readStream(STDIN_NAME, opts.stdin ?? process.stdin)});
    } else if (isUrl(source)) {
      out.push({name: source, text: await fetchText(source, opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS)});
    } else {
      let bytes: Buffer;
      try {
        bytes = await readFile(source);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
        throw new TskitError(`${source}: cannot read config file: ${why}`, {cause: err});
      }
      if (bytes.length > MAX_CONFIG_BYTES) throw new TskitError(`${source}: larger than ${MAX_CONFIG_BYTES} bytes, not a config file`);
      out.push({name: source, text: decode(source, bytes)});
    }
  }
  return out;
}
