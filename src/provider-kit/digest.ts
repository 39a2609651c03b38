// Content identity for idempotent pushes: a cloud image is tagged with the sha256 of the file
// it was made from (the digest `tskit build` reports for the artifact), so pushing the same
// bytes again finds the image instead of uploading, and a name derived from the digest is
// the same on every machine.
import {createHash} from 'node:crypto';
import {open, stat} from 'node:fs/promises';
import {TskitError} from '../errors.ts';
import {isZero} from '../formats/blocks.ts';

export interface FileDigestOptions {
  signal?: AbortSignal;
  progress?(done: number, total: number): void;
}

export interface FileDigest {
  /** sha256 of the file, hex. */
  sha256: string;
  size: number;
  /** The file's modification time when it was read (checkUnchanged compares it). */
  mtimeMs: number;
  /** With `blockSize`: how many blockSize-byte blocks of the file hold anything but zeros (the last zero-padded). */
  nonZeroBlocks?: number;
}

/** sha256 (hex) of a file, streamed in 4 MiB reads. */
export async function fileSha256(path: string, options: FileDigestOptions = {}): Promise<string> {
  return (await fileDigest(path, options)).sha256;
}

/**
 * One read of a file: its sha256, and with `blockSize` (a divisor of 4 MiB) how many of its
 * blocks are not all zero. For a raw disk that count is what an upload of non-zero blocks
 * will send, known before the upload starts (progress totals).
 */
export async function fileDigest(path: string, options: FileDigestOptions & {blockSize?: number} = {}): Promise<FileDigest> {
  const file = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new TskitError(`cannot read ${path}: ${error.code === 'ENOENT' ? 'no such file' : (error.code ?? error.message)}`);
  });
  try {
    const {size, mtimeMs} = await file.stat();
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafeSlow(4 * 1024 * 1024);
    const blockSize = options.blockSize;
    if (blockSize !== undefined && (blockSize <= 0 || buffer.length % blockSize !== 0)) throw new Error(`fileDigest: block size ${blockSize} must divide 4 MiB`);
    let nonZero = 0;
    for (let at = 0; at < size; ) {
      options.signal?.throwIfAborted();
      // whole buffers, so blocks never straddle two reads
      let got = 0;
      const want = Math.min(buffer.length, size - at);
      while (got < want) {
        const {bytesRead} = await file.read(buffer, got, want - got, at + got);
        if (bytesRead === 0) throw new TskitError(`${path} changed while being read (it ended at byte ${at + got}, not ${size})`);
        got += bytesRead;
      }
      const data = buffer.subarray(0, got);
      hash.update(data);
      if (blockSize) for (let b = 0; b < got; b += blockSize) if (!isZero(data.subarray(b, Math.min(got, b + blockSize)))) nonZero++;
      at += got;
      options.progress?.(at, size);
    }
    return {sha256: hash.digest('hex'), size, mtimeMs, ...(blockSize ? {nonZeroBlocks: nonZero} : {})};
  } finally {
    await file.close();
  }
}

/**
 * Fails when the file is no longer what `digest` read (its size or modification time moved):
 * an image tagged with a digest must hold exactly those bytes. Call it after the upload.
 */
export async function checkUnchanged(path: string, digest: Pick<FileDigest, 'size' | 'mtimeMs'>): Promise<void> {
  const now = await stat(path).catch(() => undefined);
  if (!now || now.size !== digest.size || now.mtimeMs !== digest.mtimeMs) throw new TskitError(`${path} changed while being pushed; push it again once it is written`);
}

export interface ContentNameOptions {
  /** Longest name the cloud takes (AWS AMI 128, GCE 63, Azure image 80). */
  maxLength: number;
  /** Characters the cloud refuses in a name; each becomes '-'. */
  illegal: RegExp;
  /** Hex digits of the digest appended (default 12). */
  digits?: number;
  lowercase?: boolean;
  /** A name must start with a letter (GCE): prefixed with `tskit-` otherwise. */
  letterFirst?: boolean;
}

/** `STEM-<first hex digits of sha256>`, cut and spelled as the cloud's names allow. */
export function contentName(stem: string, sha256: string, options: ContentNameOptions): string {
  const digits = sha256.slice(0, options.digits ?? 12);
  let base = (options.lowercase ? stem.toLowerCase() : stem).replace(options.illegal, '-');
  if (options.letterFirst && !/^[a-zA-Z]/.test(base)) base = `tskit-${base}`;
  return `${base.slice(0, Math.max(1, options.maxLength - digits.length - 1)) || 'image'}-${digits}`;
}
