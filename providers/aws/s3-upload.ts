// A disk file into an S3 object for ImportSnapshot: a multipart upload with parts in
// parallel, each with its Content-MD5 so S3 rejects a damaged part. Resumable: an unfinished
// upload of the same key is found again (ListMultipartUploads) and every part S3 already has
// with the same MD5 (ListParts' ETag) is kept, so a re-run sends only what is missing. An
// object already there with the same sha256 (our metadata) is not sent again at all.
import {createHash} from 'node:crypto';
import {open} from 'node:fs/promises';
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import {awsError, errorCode, httpStatus, isNotFound, named} from './errors.ts';
import {forEachBounded} from '../../src/provider-kit/upload.ts';
import {adoptOrRecord, type AwsJournal} from './journal.ts';
import type {AwsClients} from './sdk.ts';

const MIB = 1024 * 1024;

export interface S3UploadOptions {
  clients: AwsClients;
  path: string;
  size: number;
  sha256: string;
  bucket: string;
  key: string;
  journal: AwsJournal;
  emit: Emit;
  signal?: AbortSignal;
  concurrency?: number;
  /** Minimum part size (S3's minimum is 5 MiB). */
  partSize?: number;
}

export interface S3UploadResult {
  bytesSent: number;
  partsResumed: number;
  /** True when the object was already there with this content. */
  reused: boolean;
}

/** Fails with what to do when the bucket is missing or not ours to write. */
export async function checkBucket(clients: AwsClients, bucket: string, signal?: AbortSignal): Promise<void> {
  await clients.load('s3');
  try {
    await clients.s3.send(new clients.sdk.s3.HeadBucketCommand({Bucket: bucket}), {abortSignal: signal});
  } catch (error) {
    const status = httpStatus(error);
    if (status === 404 || isNotFound(error)) throw new TskitError(`S3 bucket ${bucket} does not exist in ${clients.region}: create it (aws s3 mb s3://${bucket}) or name another with --bucket`);
    if (status === 403) throw new TskitError(`S3 bucket ${bucket} is not accessible with these credentials (403): pick a bucket you can write to with --bucket`);
    throw awsError(error, 'HeadBucket');
  }
}

export async function uploadToS3(options: S3UploadOptions): Promise<S3UploadResult> {
  const {clients, bucket, key, size, sha256, emit, signal, journal} = options;
  await clients.load('s3');
  const {s3, sdk} = clients;
  const existing = await s3.send(new sdk.s3.HeadObjectCommand({Bucket: bucket, Key: key}), {abortSignal: signal}).catch((error: unknown) => {
    if (isNotFound(error) || httpStatus(error) === 404) return undefined;
    throw awsError(error, 'HeadObject');
  });
  if (existing && existing.ContentLength === size && existing.Metadata?.['tskit-sha256'] === sha256) {
    emit({type: 'log', level: 'info', message: `s3://${bucket}/${key} already holds this image`});
    return {bytesSent: 0, partsResumed: 0, reused: true};
  }

  const partSize = Math.max(options.partSize ?? 8 * MIB, Math.ceil(size / 10_000 / MIB) * MIB);
  const partCount = Math.max(1, Math.ceil(size / partSize));
  const {uploadId, parts: have} = await findOrStartUpload(options);
  const uploadResource = {provider: 'aws' as const, kind: 's3-multipart-upload', id: `${bucket}/${key}#${uploadId}`, region: clients.region};

  const etags = new Map<number, string>();
  let bytesSent = 0;
  let bytesDone = 0;
  let partsResumed = 0;
  let lastProgress = 0;
  const file = await open(options.path, 'r');
  try {
    const numbers = Array.from({length: partCount}, (_, i) => i + 1);
    await forEachBounded(numbers, {concurrency: options.concurrency ?? 4, ...(signal ? {signal} : {})}, async (n) => {
      const offset = (n - 1) * partSize;
      const length = Math.min(partSize, size - offset);
      const body = Buffer.alloc(length);
      const {bytesRead} = await file.read(body, 0, length, offset);
      if (bytesRead !== length) throw new TskitError(`${options.path} changed while being uploaded (short read at byte ${offset + bytesRead})`);
      const md5 = createHash('md5').update(body).digest();
      const old = have.get(n);
      if (old && old.size === length && old.etag.replace(/"/g, '') === md5.toString('hex')) {
        etags.set(n, old.etag);
        partsResumed++;
      } else {
        const answer = await named(
          `UploadPart (part ${n})`,
          s3.send(new sdk.s3.UploadPartCommand({Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body, ContentMD5: md5.toString('base64'), ContentLength: length}), {abortSignal: signal}),
        );
        if (!answer.ETag) throw new TskitError(`S3 accepted part ${n} of s3://${bucket}/${key} without an ETag`);
        etags.set(n, answer.ETag);
        bytesSent += length;
      }
      bytesDone += length;
      if (Date.now() - lastProgress > 250 || bytesDone === size) {
        lastProgress = Date.now();
        emit({type: 'progress', task: `upload s3://${bucket}/${key}`, done: bytesDone, total: size, unit: 'bytes'});
      }
    });
  } finally {
    await file.close();
  }
  const objectResource = {provider: 'aws' as const, kind: 's3-object', id: `${bucket}/${key}`, region: clients.region};
  await journal.record(objectResource);
  await named(
    'CompleteMultipartUpload',
    s3.send(new sdk.s3.CompleteMultipartUploadCommand({Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: {Parts: [...etags].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({PartNumber, ETag}))}}), {abortSignal: signal}),
  );
  await journal.forget(uploadResource);
  const head = await named('HeadObject', s3.send(new sdk.s3.HeadObjectCommand({Bucket: bucket, Key: key}), {abortSignal: signal}));
  if (head.ContentLength !== size) throw new TskitError(`s3://${bucket}/${key} holds ${head.ContentLength} bytes after the upload, not ${size}`);
  return {bytesSent, partsResumed, reused: false};
}

async function findOrStartUpload(options: S3UploadOptions): Promise<{uploadId: string; parts: Map<number, {etag: string; size: number}>}> {
  const {clients, bucket, key, sha256, signal, journal} = options;
  const {s3, sdk} = clients;
  const listed = await named('ListMultipartUploads', s3.send(new sdk.s3.ListMultipartUploadsCommand({Bucket: bucket, Prefix: key}), {abortSignal: signal}));
  const previous = (listed.Uploads ?? []).filter((u) => u.Key === key && u.UploadId).sort((a, b) => (b.Initiated?.getTime() ?? 0) - (a.Initiated?.getTime() ?? 0))[0];
  if (previous?.UploadId) {
    const parts = new Map<number, {etag: string; size: number}>();
    let marker: string | undefined;
    try {
      do {
        const page = await s3.send(new sdk.s3.ListPartsCommand({Bucket: bucket, Key: key, UploadId: previous.UploadId, PartNumberMarker: marker}), {abortSignal: signal});
        for (const part of page.Parts ?? []) if (part.PartNumber && part.ETag) parts.set(part.PartNumber, {etag: part.ETag, size: part.Size ?? -1});
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
      options.emit({type: 'log', level: 'info', message: `continuing the upload to s3://${bucket}/${key} (${parts.size} parts already there)`});
      await adoptOrRecord(journal, {provider: 'aws', kind: 's3-multipart-upload', id: `${bucket}/${key}#${previous.UploadId}`, region: clients.region});
      return {uploadId: previous.UploadId, parts};
    } catch (error) {
      if (!isNotFound(error) && errorCode(error) !== 'NoSuchUpload') throw awsError(error, 'ListParts');
    }
  }
  const started = await named('CreateMultipartUpload', s3.send(new sdk.s3.CreateMultipartUploadCommand({Bucket: bucket, Key: key, Metadata: {'tskit-sha256': sha256}, ContentType: 'application/octet-stream'}), {abortSignal: signal}));
  if (!started.UploadId) throw new TskitError('S3 CreateMultipartUpload answered without an upload id');
  await journal.record({provider: 'aws', kind: 's3-multipart-upload', id: `${bucket}/${key}#${started.UploadId}`, region: clients.region});
  return {uploadId: started.UploadId, parts: new Map()};
}
