// A client for the OCI distribution API: manifests (verified by digest), blobs streamed to
// disk with size and digest checked on the way (resuming with Range after a dropped
// connection), and the push side: existence checks, cross-repository mounts, chunked
// uploads with a monolithic fallback, and manifest PUT. Errors name the image reference
// and the registry.
import type {Hash} from 'node:crypto';
import {open} from 'node:fs/promises';
import type {Readable} from 'node:stream';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import {Authenticator, pullScope, pushScope} from './auth.ts';
import {DockerConfigCredentials, type CredentialStore} from './credentials.ts';
import {BlobVerificationError, createDigester, digestOf, parseDigest} from './digest.ts';
import {describeEndpoint, EndpointResolver, redactUrl, type Endpoint} from './endpoints.ts';
import {formatReference, type ImageReference} from './reference.ts';
import {isNoSpace, noSpaceError, writeFullyAt} from './file-writes.ts';
import {abortableSleep, ConnectionError, describeError, errorCode, HttpTransport, isRetryableError, type BodySource, type HttpResponse, type TransportOptions} from './transport.ts';
import {MediaTypes, type Descriptor} from './types.ts';

/** Every manifest kind tskit understands; distribution answers 404 to a GET without them. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
];
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const SCHEMA1_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);
/** Manifests are small; a bigger answer is a broken or hostile registry. */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
/** Bytes gathered before each write to a blob file. */
const WRITE_BATCH = 1024 * 1024;
/**
 * How long one manifest or blob may take from the first request to the last byte, retries
 * and resumes included (`--timeout`): long enough for a large layer on a slow link, short
 * enough that a registry that stalls fails the pull instead of hanging it.
 */
export const DEFAULT_DEADLINE_MS = 10 * 60_000;
/** Default chunk size for chunked blob uploads. */
export const DEFAULT_UPLOAD_CHUNK = 16 * 1024 * 1024;

export interface RegistryClientOptions extends TransportOptions {
  /** From parseMirrors(). */
  mirrors?: Map<string, string>;
  /** Hosts (host or host:port) where plain http and unverified TLS are allowed. */
  insecureRegistries?: string[];
  /** Defaults to Docker's config.json (DOCKER_CONFIG or ~/.docker). */
  credentials?: CredentialStore;
  emit?: Emit;
  /** Longest time one manifest or blob download may take, retries included (default DEFAULT_DEADLINE_MS). */
  deadlineMs?: number;
  /** Aborts every request (Ctrl-C); the calls then throw its reason. */
  signal?: AbortSignal;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  size: number;
}

/** Bytes of a blob to upload, openable again for retries and chunks. */
export interface BlobSource {
  /** A stream of bytes [start, end). */
  open(start: number, end: number): Readable;
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

export interface UploadOptions {
  /** Bytes per PATCH; Infinity (or `monolithic`) sends the blob in one PUT. */
  chunkSize?: number;
  monolithic?: boolean;
  /** Another repository on the same registry that has the blob: try a cross-repository mount first. */
  mountFrom?: ImageReference;
  onProgress?: (bytes: number) => void;
}

export interface DownloadOptions {
  /** Called with the number of new bytes written (negative when a download restarts). */
  onProgress?: (delta: number) => void;
  /** Called with the bytes as they reach the file, in order; awaited (so a slow reader slows the download). */
  onData?: (data: Buffer) => void | Promise<void>;
  /** Called when the download starts over from byte 0 (what onData had is void). */
  onRestart?: () => void;
}

/** An HTTP answer the registry gave that tskit cannot go on from. */
export class RegistryError extends TskitError {
  readonly status: number;
  readonly code: string | undefined;
  constructor(message: string, status: number, code: string | undefined) {
    super(message);
    this.name = 'RegistryError';
    this.status = status;
    this.code = code;
  }
}

interface CallOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path after /v2/<repository>/, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: BodySource;
  scopes: string[];
  retry?: boolean;
  signal?: AbortSignal;
}

const TLS_CERT_CODES = /^(ERR_TLS_CERT|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT)/;

export class RegistryClient {
  readonly endpoints: EndpointResolver;
  private readonly transport: HttpTransport;
  private readonly auth: Authenticator;
  private readonly emit: Emit;
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>();
  private readonly deadlineMs: number;
  private readonly signal: AbortSignal | undefined;

  constructor(options: RegistryClientOptions = {}) {
    this.emit = options.emit ?? ignoreEvents;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.signal = options.signal;
    this.endpoints = new EndpointResolver({mirrors: options.mirrors, insecureRegistries: options.insecureRegistries});
    this.transport = new HttpTransport({...options, emit: this.emit});
    const credentials = options.credentials ?? new DockerConfigCredentials({emit: this.emit});
    this.auth = new Authenticator({
      credentials,
      transport: this.transport,
      endpoints: this.endpoints,
      ...(credentials instanceof DockerConfigCredentials ? {credentialSource: credentials.path} : {}),
    });
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** The endpoint serving a reference's registry (mirror or registry itself); throws when http is not allowed. */
  endpoint(ref: ImageReference): Endpoint {
    return this.endpoints.resolve(ref.domain);
  }

  // ---- manifests ---------------------------------------------------------------------

  /**
   * GETs a manifest or index by the reference's digest (verified) or tag (digest computed,
   * and checked against Docker-Content-Digest when the registry sends one).
   */
  async getManifest(ref: ImageReference): Promise<FetchedManifest> {
    const endpoint = this.endpoint(ref);
    const object = ref.digest ?? ref.tag ?? 'latest';
    return this.withDeadline(`the manifest of ${formatReference(ref)} from ${describeEndpoint(endpoint)}`, (signal) => this.fetchManifest(ref, endpoint, object, signal));
  }

  private async fetchManifest(ref: ImageReference, endpoint: Endpoint, object: string, signal: AbortSignal): Promise<FetchedManifest> {
    const response = await this.call(ref, endpoint, {
      signal,
      method: 'GET',
      path: `manifests/${object}`,
      headers: {accept: MANIFEST_ACCEPT},
      scopes: [pullScope(this.repository(endpoint, ref))],
    });
    if (response.status !== 200) throw await this.failure(response, ref, endpoint, `manifest ${object}`);
    const bytes = await readLimited(response, MAX_MANIFEST_BYTES, () => `the manifest of ${formatReference(ref)} from ${describeEndpoint(endpoint)}`);
    const algorithm = ref.digest ? parseDigest(ref.digest).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (ref.digest && digest !== ref.digest) {
      throw new BlobVerificationError(
        `manifest of image ${formatReference(ref)} from ${describeEndpoint(endpoint)} failed verification: asked for ${ref.digest}, got content with digest ${digest}`,
        ref.digest,
      );
    }
    const headerDigest = response.headers['docker-content-digest'];
    if (!ref.digest && headerDigest && headerDigest.startsWith(`${algorithm}:`) && headerDigest !== digest) {
      throw new BlobVerificationError(
        `manifest of image ${formatReference(ref)} from ${describeEndpoint(endpoint)} failed verification: the registry says ${headerDigest}, the content is ${digest}`,
        headerDigest,
      );
    }
    const mediaType = manifestMediaType(bytes, response.headers['content-type'], formatReference(ref));
    return {bytes, digest, mediaType, size: bytes.length};
  }

  /** HEADs a manifest: its descriptor, or undefined when the registry does not have it. */
  async headManifest(ref: ImageReference): Promise<Descriptor | undefined> {
    const endpoint = this.endpoint(ref);
    const object = ref.digest ?? ref.tag ?? 'latest';
    const response = await this.call(ref, endpoint, {
      method: 'HEAD',
      path: `manifests/${object}`,
      headers: {accept: MANIFEST_ACCEPT},
      scopes: [pullScope(this.repository(endpoint, ref))],
    });
    await response.body.dump().catch(() => {});
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.failure(response, ref, endpoint, `manifest ${object}`);
    const digest = response.headers['docker-content-digest'] ?? ref.digest;
    if (!digest) throw new TskitError(`${describeEndpoint(endpoint)} did not say the digest of ${formatReference(ref)} (no Docker-Content-Digest)`);
    return {
      mediaType: (response.headers['content-type'] ?? '').split(';')[0]!.trim(),
      digest,
      size: Number(response.headers['content-length'] ?? 0),
    };
  }

  /** PUTs a manifest under the reference's tag (or digest); returns its digest. */
  async putManifest(ref: ImageReference, bytes: Buffer, mediaType: string): Promise<string> {
    const endpoint = this.endpoint(ref);
    const digest = digestOf(bytes);
    const object = ref.tag ?? ref.digest ?? digest;
    const response = await this.call(ref, endpoint, {
      method: 'PUT',
      path: `manifests/${object}`,
      headers: {'content-type': mediaType, 'content-length': String(bytes.length)},
      body: bytes,
      scopes: [pushScope(this.repository(endpoint, ref))],
      retry: true,
    });
    if (response.status !== 201 && response.status !== 200) throw await this.failure(response, ref, endpoint, `manifest ${object}`);
    await response.body.dump().catch(() => {});
    const answered = response.headers['docker-content-digest'];
    if (answered && answered !== digest) {
      throw new TskitError(`${describeEndpoint(endpoint)} stored the manifest for ${formatReference(ref)} as ${answered}, but its digest is ${digest}`);
    }
    return digest;
  }

  // ---- blobs ---------------------------------------------------------------------------

  /**
   * Streams a blob into `file` (created or truncated), checking size and digest as it
   * goes. A connection dropped mid-blob is resumed with a Range request when the registry
   * supports it; a registry that answers the Range request with the whole blob starts it
   * over from byte 0. Every write lands at its own position, so the file holds exactly the
   * bytes that were hashed, and its size is checked again before returning. The whole
   * download, retries included, has one deadline (`deadlineMs`). Throws
   * BlobVerificationError on a mismatch; the caller removes the file.
   */
  async downloadBlob(ref: ImageReference, descriptor: Descriptor, file: string, options: DownloadOptions = {}): Promise<void> {
    const endpoint = this.endpoint(ref);
    const {algorithm} = parseDigest(descriptor.digest, `digest of a blob of ${formatReference(ref)}`);
    const origin = describeEndpoint(endpoint);
    const what = `blob ${descriptor.digest} of image ${formatReference(ref)} from ${origin}`;
    await this.withDeadline(what, async (signal) => {
      const handle = await open(file, 'w');
      try {
        let hash: Hash = createDigester(algorithm);
        let offset = 0;
        const restart = async () => {
          options.onProgress?.(-offset);
          options.onRestart?.();
          await handle.truncate(0);
          hash = createDigester(algorithm);
          offset = 0;
        };
        const attempts = Math.max(1, this.transport.retryPolicy.attempts);
        for (let attempt = 1; ; attempt++) {
          try {
            const headers: Record<string, string> = {};
            if (offset > 0) headers.range = `bytes=${offset}-`;
            const response = await this.call(ref, endpoint, {
              method: 'GET',
              path: `blobs/${descriptor.digest}`,
              headers,
              scopes: [pullScope(this.repository(endpoint, ref))],
              signal,
            });
            if (offset > 0 && response.status === 206) {
              const start = /^bytes (\d+)-/.exec(response.headers['content-range'] ?? '')?.[1];
              if (Number(start) !== offset) {
                await response.body.dump().catch(() => {});
                await restart();
                continue;
              }
            } else if (response.status === 200) {
              // a whole blob, also when a Range was asked for: it starts at byte 0
              if (offset > 0) await restart();
            } else {
              throw await this.failure(response, ref, endpoint, `blob ${descriptor.digest}`);
            }
            const length = response.headers['content-length'];
            if (length !== undefined && offset + Number(length) !== descriptor.size) {
              await response.body.dump().catch(() => {});
              throw new BlobVerificationError(`${what} failed verification: the registry sends ${offset + Number(length)} bytes, but its descriptor gives ${descriptor.size}`, descriptor.digest);
            }
            // Writes are batched (fewer syscalls); hash and offset only advance with what
            // reached the file, so a resume after a dropped connection starts at the right byte.
            let batch: Buffer[] = [];
            let batched = 0;
            const flush = async () => {
              if (batched === 0) return;
              const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
              batch = [];
              batched = 0;
              try {
                await writeFullyAt(handle, data, offset);
              } catch (error) {
                if (isNoSpace(error)) throw await noSpaceError(file, `blob ${descriptor.digest} of image ${formatReference(ref)}`, descriptor.size, offset, error);
                throw error;
              }
              hash.update(data);
              offset += data.length;
              options.onProgress?.(data.length);
              await options.onData?.(data);
            };
            try {
              for await (const chunk of response.body as AsyncIterable<Buffer>) {
                if (offset + batched + chunk.length > descriptor.size) {
                  response.body.destroy();
                  throw new BlobVerificationError(`${what} failed verification: got more than the ${descriptor.size} bytes its descriptor gives`, descriptor.digest);
                }
                batch.push(chunk);
                batched += chunk.length;
                if (batched >= WRITE_BATCH) await flush();
              }
            } finally {
              await flush();
            }
            break;
          } catch (error) {
            // Registry answers and failures to connect (already retried) end the download;
            // a connection lost mid-body is resumed.
            if (signal.aborted || error instanceof TskitError) throw error;
            if (attempt >= attempts || !isRetryableError(error)) {
              throw new ConnectionError(`downloading ${what} failed: ${describeError(error)}`, errorCode(error), error);
            }
            this.emit({type: 'log', level: 'warn', message: `blob ${descriptor.digest} of ${formatReference(ref)}: ${describeError(error)}; resuming at byte ${offset}`});
            await abortableSleep(this.transport.retryPolicy.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2), signal);
          }
        }
        if (offset !== descriptor.size) {
          throw new BlobVerificationError(`${what} failed verification: got ${offset} bytes, but its descriptor gives ${descriptor.size}`, descriptor.digest);
        }
        const actual = `${algorithm}:${hash.digest('hex')}`;
        if (actual !== descriptor.digest) {
          throw new BlobVerificationError(`${what} failed verification: got content with digest ${actual}`, descriptor.digest);
        }
        // What the file holds, not only what was hashed: nothing else may have written to it.
        const stored = (await handle.stat()).size;
        if (stored !== descriptor.size) {
          throw new BlobVerificationError(`${what}: ${file} holds ${stored} bytes after the download, not ${descriptor.size}`, descriptor.digest);
        }
      } finally {
        await handle.close();
      }
    });
  }

  /** Fetches a small blob (a config) into memory, verified. */
  async getBlobBytes(ref: ImageReference, descriptor: Descriptor, limit = MAX_MANIFEST_BYTES): Promise<Buffer> {
    if (descriptor.size > limit) throw new TskitError(`blob ${descriptor.digest} of ${formatReference(ref)} is ${descriptor.size} bytes, more than the ${limit} expected`);
    const endpoint = this.endpoint(ref);
    return this.withDeadline(`blob ${descriptor.digest} of image ${formatReference(ref)} from ${describeEndpoint(endpoint)}`, (signal) => this.fetchBlobBytes(ref, endpoint, descriptor, signal));
  }

  private async fetchBlobBytes(ref: ImageReference, endpoint: Endpoint, descriptor: Descriptor, signal: AbortSignal): Promise<Buffer> {
    const response = await this.call(ref, endpoint, {
      method: 'GET',
      path: `blobs/${descriptor.digest}`,
      scopes: [pullScope(this.repository(endpoint, ref))],
      signal,
    });
    if (response.status !== 200) throw await this.failure(response, ref, endpoint, `blob ${descriptor.digest}`);
    const bytes = await readLimited(response, descriptor.size, () => `blob ${descriptor.digest} of image ${formatReference(ref)} from ${describeEndpoint(endpoint)}`, true);
    const {algorithm} = parseDigest(descriptor.digest);
    const actual = digestOf(bytes, algorithm);
    if (bytes.length !== descriptor.size || actual !== descriptor.digest) {
      throw new BlobVerificationError(
        `blob ${descriptor.digest} of image ${formatReference(ref)} from ${describeEndpoint(endpoint)} failed verification: got ${bytes.length} bytes with digest ${actual}`,
        descriptor.digest,
      );
    }
    return bytes;
  }

  /** True when the repository already has the blob. */
  async blobExists(ref: ImageReference, digest: string, scopes?: string[]): Promise<boolean> {
    const endpoint = this.endpoint(ref);
    const response = await this.call(ref, endpoint, {
      method: 'HEAD',
      path: `blobs/${digest}`,
      scopes: scopes ?? [pullScope(this.repository(endpoint, ref))],
    });
    await response.body.dump().catch(() => {});
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw await this.failure(response, ref, endpoint, `blob ${digest}`);
  }

  /**
   * Uploads a blob unless the repository has it: a cross-repository mount when `mountFrom`
   * is given, else a chunked upload (POST, PATCH with Content-Range, PUT ?digest=), falling
   * back to POST + one PUT with the whole body when the registry refuses chunks.
   */
  async uploadBlob(ref: ImageReference, descriptor: Descriptor, source: BlobSource, options: UploadOptions = {}): Promise<UploadOutcome> {
    const endpoint = this.endpoint(ref);
    const repository = this.repository(endpoint, ref);
    const scopes = [pushScope(repository)];
    if (options.mountFrom) scopes.push(pullScope(this.repository(this.endpoint(options.mountFrom), options.mountFrom)));
    if (await this.blobExists(ref, descriptor.digest, scopes)) return 'exists';

    let location: string | undefined;
    if (options.mountFrom) {
      const from = this.repository(this.endpoint(options.mountFrom), options.mountFrom);
      const response = await this.call(ref, endpoint, {
        method: 'POST',
        path: `blobs/uploads/?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from)}`,
        headers: {'content-length': '0'},
        scopes,
        retry: true,
      });
      await response.body.dump().catch(() => {});
      if (response.status === 201) return 'mounted';
      if (response.status === 202) location = response.headers.location;
      else throw await this.failure(response, ref, endpoint, `mount of blob ${descriptor.digest}`);
    }
    location ??= await this.startUpload(ref, endpoint, scopes);
    const base = await this.baseUrl(endpoint);

    const chunkSize = options.monolithic ? Number.POSITIVE_INFINITY : options.chunkSize ?? DEFAULT_UPLOAD_CHUNK;
    if (descriptor.size > 0 && Number.isFinite(chunkSize)) {
      const chunked = await this.uploadChunks(ref, endpoint, new URL(location, base).href, descriptor, source, chunkSize, scopes, options);
      if (chunked.done) {
        await this.finishUpload(ref, endpoint, chunked.location, descriptor, undefined, scopes);
        return 'uploaded';
      }
      // The registry refused chunks: start over with one PUT.
      location = await this.startUpload(ref, endpoint, scopes);
    }
    await this.finishUpload(ref, endpoint, new URL(location, base).href, descriptor, () => source.open(0, descriptor.size), scopes);
    options.onProgress?.(descriptor.size);
    return 'uploaded';
  }

  private async startUpload(ref: ImageReference, endpoint: Endpoint, scopes: string[]): Promise<string> {
    const response = await this.call(ref, endpoint, {
      method: 'POST',
      path: 'blobs/uploads/',
      headers: {'content-length': '0'},
      scopes,
      retry: true,
    });
    await response.body.dump().catch(() => {});
    const location = response.headers.location;
    if (response.status !== 202 || !location) throw await this.failure(response, ref, endpoint, 'blob upload');
    return location;
  }

  private async uploadChunks(
    ref: ImageReference,
    endpoint: Endpoint,
    startLocation: string,
    descriptor: Descriptor,
    source: BlobSource,
    chunkSize: number,
    scopes: string[],
    options: UploadOptions,
  ): Promise<{done: true; location: string} | {done: false}> {
    let location = startLocation;
    let offset = 0;
    let failures = 0;
    while (offset < descriptor.size) {
      const end = Math.min(offset + chunkSize, descriptor.size);
      let response: HttpResponse;
      try {
        const start = offset;
        response = await this.call(ref, endpoint, {
          method: 'PATCH',
          path: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${start}-${end - 1}`,
            'content-length': String(end - start),
          },
          body: () => source.open(start, end),
          scopes,
          retry: false,
        });
      } catch (error) {
        if (!(error instanceof ConnectionError) || ++failures > this.transport.retryPolicy.attempts) throw error;
        // Ask the registry how much it has, and go on from there.
        const status = await this.uploadStatus(ref, endpoint, location, scopes);
        location = status.location;
        offset = status.offset;
        continue;
      }
      await response.body.dump().catch(() => {});
      if (response.status === 202) {
        location = new URL(response.headers.location ?? location, location).href;
        const reported = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.range ?? '');
        const next = reported ? Number(reported[1]) + 1 : end;
        options.onProgress?.(next - offset);
        offset = next;
        continue;
      }
      if (offset === 0 && [400, 404, 405, 415, 501].includes(response.status)) {
        this.emit({type: 'log', level: 'debug', message: `${describeEndpoint(endpoint)} refused a chunked upload (HTTP ${response.status}); sending ${descriptor.digest} in one request`});
        return {done: false};
      }
      if (response.status === 416 && ++failures <= this.transport.retryPolicy.attempts) {
        const status = await this.uploadStatus(ref, endpoint, location, scopes);
        location = status.location;
        offset = status.offset;
        continue;
      }
      throw await this.failure(response, ref, endpoint, `chunk ${offset}-${end - 1} of blob ${descriptor.digest}`);
    }
    return {done: true, location};
  }

  private async uploadStatus(ref: ImageReference, endpoint: Endpoint, location: string, scopes: string[]): Promise<{location: string; offset: number}> {
    const response = await this.call(ref, endpoint, {method: 'GET', path: location, scopes});
    await response.body.dump().catch(() => {});
    if (response.status !== 204) throw await this.failure(response, ref, endpoint, 'upload status');
    const reported = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.range ?? '');
    return {location: new URL(response.headers.location ?? location, location).href, offset: reported ? Number(reported[1]) + 1 : 0};
  }

  private async finishUpload(
    ref: ImageReference,
    endpoint: Endpoint,
    location: string,
    descriptor: Descriptor,
    body: (() => Readable) | undefined,
    scopes: string[],
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', descriptor.digest);
    const response = await this.call(ref, endpoint, {
      method: 'PUT',
      path: url.href,
      headers: {'content-type': 'application/octet-stream', 'content-length': String(body ? descriptor.size : 0)},
      ...(body ? {body} : {}),
      scopes,
      retry: body === undefined,
    });
    await response.body.dump().catch(() => {});
    if (response.status !== 201) throw await this.failure(response, ref, endpoint, `upload of blob ${descriptor.digest}`);
    const answered = response.headers['docker-content-digest'];
    if (answered && answered !== descriptor.digest) {
      throw new TskitError(`${describeEndpoint(endpoint)} stored blob ${descriptor.digest} of ${formatReference(ref)} as ${answered}`);
    }
  }

  // ---- plumbing --------------------------------------------------------------------------

  /**
   * Runs one download under its deadline and the client's abort signal: the signal handed to
   * `work` aborts when either fires, and the call then throws the reason (a TskitError naming
   * `what` and the deadline, or the interruption).
   */
  private async withDeadline<T>(what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new TskitError(`${what}: not complete within ${describeDeadline(this.deadlineMs)} (the deadline for one blob or manifest; --timeout changes it)`)),
      this.deadlineMs,
    );
    const interrupt = () => controller.abort(this.signal?.reason);
    if (this.signal?.aborted) interrupt();
    else this.signal?.addEventListener('abort', interrupt, {once: true});
    try {
      return await work(controller.signal);
    } catch (error) {
      if (controller.signal.aborted) throw controller.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      this.signal?.removeEventListener('abort', interrupt);
    }
  }

  /** The repository name on the endpoint (a mirror URL's path prefixes it). */
  repository(endpoint: Endpoint, ref: ImageReference): string {
    return endpoint.pathPrefix ? `${endpoint.pathPrefix}/${ref.path}` : ref.path;
  }

  private baseUrl(endpoint: Endpoint): Promise<string> {
    const key = `${endpoint.host} ${endpoint.scheme}`;
    let scheme = this.schemes.get(key);
    if (!scheme) {
      scheme = endpoint.scheme === 'https-or-http' ? this.probe(endpoint) : Promise.resolve(endpoint.scheme);
      this.schemes.set(key, scheme);
    }
    return scheme.then((s) => `${s}://${endpoint.host}`);
  }

  /** Docker's rule for loopback and insecure registries: https when the host speaks TLS, else http. */
  private async probe(endpoint: Endpoint): Promise<'https' | 'http'> {
    try {
      const response = await this.transport.send({
        method: 'GET',
        url: `https://${endpoint.host}/v2/`,
        insecureTls: endpoint.insecureTls,
        retry: false,
        followRedirects: false,
      });
      if (response.status === 401) this.auth.learn(endpoint, response.headers['www-authenticate']);
      await response.body.dump().catch(() => {});
      return 'https';
    } catch (error) {
      const code = errorCode(error) ?? '';
      if (TLS_CERT_CODES.test(code)) return 'https'; // speaks TLS; the real request will report the certificate problem
      this.emit({type: 'log', level: 'debug', message: `${endpoint.host} does not answer https (${code || describeError(error)}); using http`});
      return 'http';
    }
  }

  private async call(ref: ImageReference, endpoint: Endpoint, options: CallOptions): Promise<HttpResponse> {
    const base = await this.baseUrl(endpoint);
    const url = /^https?:\/\//.test(options.path) ? options.path : `${base}/v2/${this.repository(endpoint, ref)}/${options.path}`;
    const sent = await this.auth.authorization(endpoint, options.scopes);
    const request = (authorization: string | undefined) =>
      this.transport.send({
        method: options.method,
        url,
        headers: {...options.headers, ...(authorization ? {authorization} : {})},
        ...(options.body !== undefined ? {body: options.body} : {}),
        insecureTls: endpoint.insecureTls,
        ...(options.retry !== undefined ? {retry: options.retry} : {}),
        ...(options.signal ? {signal: options.signal} : {}),
      });
    const response = await request(sent);
    if (response.status !== 401) return response;
    const retryWith = await this.auth.respond(endpoint, response.headers['www-authenticate'], options.scopes, sent);
    if (retryWith === undefined) return response;
    await response.body.dump().catch(() => {});
    return request(retryWith);
  }

  private async failure(response: HttpResponse, ref: ImageReference, endpoint: Endpoint, what: string): Promise<RegistryError> {
    let detail = '';
    let code: string | undefined;
    if (response.body) {
      try {
        const text = (await readLimited(response, 64 * 1024, () => 'error body')).toString('utf8');
        const parsed = JSON.parse(text) as {errors?: Array<{code?: string; message?: string}>};
        const first = parsed.errors?.[0];
        code = first?.code;
        detail = (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
      } catch {
        // not a distribution error body
      }
    }
    const name = formatReference(ref);
    const where = describeEndpoint(endpoint);
    const suffix = detail ? ` (${detail})` : '';
    switch (response.status) {
      case 401:
        return new RegistryError(
          `authentication required for ${name} at ${where}${suffix}: log in with \`docker login ${endpoint.host}\` or add credentials for ${endpoint.host} to Docker's config.json`,
          401,
          code,
        );
      case 403:
        return new RegistryError(`access to ${name} denied by ${where}${suffix}`, 403, code);
      case 404:
        return new RegistryError(
          what.startsWith('manifest')
            ? `image ${name} not found at ${where}${suffix}`
            : `${what} of image ${name} not found at ${where}${suffix}`,
          404,
          code,
        );
      default:
        return new RegistryError(`${where} answered HTTP ${response.status} for ${what} of ${name}${suffix} (${redactUrl(response.url)})`, response.status, code);
    }
  }
}

/** 10m, 3s, 700ms: a deadline as --timeout takes it. */
function describeDeadline(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Reads a response body into memory, refusing more than `limit` bytes. */
async function readLimited(response: HttpResponse, limit: number, what: () => string, exact = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      response.body.destroy();
      if (exact) throw new BlobVerificationError(`${what()} failed verification: got more than the ${limit} bytes its descriptor gives`, '');
      throw new TskitError(`${what()} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The media type of a manifest: its own mediaType field, else Content-Type, else its shape. */
export function manifestMediaType(bytes: Buffer, contentType: string | undefined, ref: string): string {
  let parsed: {mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown; schemaVersion?: unknown};
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
  } catch (error) {
    throw new TskitError(`the manifest of ${ref} is not valid JSON: ${(error as Error).message}`);
  }
  const header = (contentType ?? '').split(';')[0]!.trim();
  if (SCHEMA1_TYPES.has(header) || parsed.schemaVersion === 1) {
    throw new TskitError(`image ${ref} has a Docker schema 1 manifest, which tskit does not support: push it again with a current Docker or skopeo`);
  }
  if (typeof parsed.mediaType === 'string' && parsed.mediaType !== '') return parsed.mediaType;
  if (MANIFEST_MEDIA_TYPES.includes(header)) return header;
  if (Array.isArray(parsed.manifests)) return MediaTypes.ociIndex;
  if (parsed.config && Array.isArray(parsed.layers)) return MediaTypes.ociManifest;
  throw new TskitError(`the manifest of ${ref} is neither an image manifest nor an index (Content-Type ${JSON.stringify(header)})`);
}
