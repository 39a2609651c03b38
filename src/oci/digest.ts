// Content digests: parsing, hashing, and a pass-through stream that checks size and digest
// while the bytes flow, so nothing unverified is ever renamed into the cache.
import {createHash, type Hash} from 'node:crypto';
import {Transform, type TransformCallback} from 'node:stream';
import {TskitError} from '../errors.ts';
import {digestProblem} from './reference.ts';

export interface ParsedDigest {
  algorithm: string;
  hex: string;
}

/** Splits `algorithm:hex`, throwing a TskitError that names `what` when it is malformed. */
export function parseDigest(digest: string, what = 'digest'): ParsedDigest {
  const problem = digestProblem(digest);
  if (problem) throw new TskitError(`${what} ${JSON.stringify(digest)} is invalid: ${problem}`);
  const colon = digest.indexOf(':');
  return {algorithm: digest.slice(0, colon), hex: digest.slice(colon + 1)};
}

export function createDigester(algorithm: string): Hash {
  return createHash(algorithm);
}

/** The digest of some bytes, in `algorithm:hex` form. */
export function digestOf(bytes: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Describes where a blob came from, for error messages. */
export interface BlobOrigin {
  /** The image reference the blob belongs to. */
  ref: string;
  /** Where it was read: a registry host, a file path. */
  source: string;
}

/**
 * Passes bytes through unchanged, failing the stream when more than `size` bytes arrive or,
 * at the end, when the size or digest differ from what the descriptor promised.
 * `startHash`/`startOffset` continue a hash over bytes already seen (a resumed download).
 */
export class VerifyingStream extends Transform {
  readonly expectedDigest: string;
  readonly expectedSize: number;
  private readonly hash: Hash;
  private seen: number;
  private readonly origin: BlobOrigin;

  constructor(expected: {digest: string; size: number}, origin: BlobOrigin, resume?: {hash: Hash; offset: number}) {
    super();
    const {algorithm} = parseDigest(expected.digest, `digest of a blob of ${origin.ref}`);
    this.expectedDigest = expected.digest;
    this.expectedSize = expected.size;
    this.hash = resume?.hash ?? createHash(algorithm);
    this.seen = resume?.offset ?? 0;
    this.origin = origin;
  }

  /** Bytes that passed so far (including a resumed prefix). */
  get offset(): number {
    return this.seen;
  }

  /** A copy of the running hash, to resume from `offset` later. */
  snapshot(): {hash: Hash; offset: number} {
    return {hash: this.hash.copy(), offset: this.seen};
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expectedSize) {
      callback(this.mismatch(`more than the ${this.expectedSize} bytes its descriptor gives`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.seen !== this.expectedSize) {
      callback(this.mismatch(`${this.seen} bytes, but its descriptor gives ${this.expectedSize}`));
      return;
    }
    const actual = `${this.expectedDigest.slice(0, this.expectedDigest.indexOf(':'))}:${this.hash.digest('hex')}`;
    if (actual !== this.expectedDigest) {
      callback(this.mismatch(`content with digest ${actual}`));
      return;
    }
    callback();
  }

  private mismatch(what: string): TskitError {
    return new BlobVerificationError(
      `blob ${this.expectedDigest} of image ${this.origin.ref} from ${this.origin.source} failed verification: got ${what}`,
      this.expectedDigest,
    );
  }
}

/** A blob whose bytes do not match its descriptor. */
export class BlobVerificationError extends TskitError {
  readonly digest: string;
  constructor(message: string, digest: string) {
    super(message);
    this.name = 'BlobVerificationError';
    this.digest = digest;
  }
}
