// `tskit push aws`: a raw or VMDK disk file → an EBS snapshot → a registered AMI.
// Default method `ebs` (EBS direct APIs: only non-zero blocks travel, no S3 bucket, no
// vmimport role); method `import` goes through an S3 object and ImportSnapshot. An AMI
// already tagged with the file's sha256 is reused unless `force`.
import {open, stat} from 'node:fs/promises';
import {basename} from 'node:path';
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import {formatArticle, openDisk, sniffDiskFormat, type OpenedDisk} from '../../src/formats/decode.ts';
import {chooseBoot} from '../../src/provider-kit/boot-choice.ts';
import {checkUnchanged, contentName, fileDigest, type FileDigest} from '../../src/provider-kit/digest.ts';
import {EBS_BLOCK, uploadToEbsSnapshot} from './ebs-upload.ts';
import {awsError, named} from './errors.ts';
import {AWS_BOOT_SPELLING, deleteImage, findImageByDigest, findImageByName, registerImage, TAGS, waitImageAvailable, type Architecture, type BootMode} from './images.ts';
import {importSnapshot} from './import-snapshot.ts';
import type {AwsJournal} from './journal.ts';
import {checkBucket, uploadToS3} from './s3-upload.ts';
import type {AwsClients} from './sdk.ts';
import type {UploadStateStore} from './upload-state.ts';

export type PushMethod = 'ebs' | 'import';

export interface AwsPushOptions {
  /** ebs (default) or import (needs `bucket`). */
  method?: PushMethod;
  bucket?: string;
  /** AMI name (default: the file's name and the first 12 hex digits of its sha256). */
  name?: string;
  /** Override what the image says (or say it when the image cannot). */
  arch?: Architecture;
  boot?: BootMode;
  /** EnaSupport on the AMI (default true: every current instance type uses ENA). */
  ena?: boolean;
  tags?: Record<string, string>;
  /** Upload and register again even when an AMI of this content exists. */
  force?: boolean;
  /** VM Import service role for --method import (default: AWS's default, vmimport). */
  roleName?: string;
  /** Keep the S3 object after an import (default: deleted once the snapshot exists). */
  keepObject?: boolean;
  /** Blocks (ebs) or parts (import) in flight. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface AwsPushResult {
  imageId: string;
  snapshotId: string;
  region: string;
  seconds: number;
  name: string;
  method: PushMethod;
  arch: Architecture;
  bootMode?: BootMode;
  /** True when an AMI of this content already existed and nothing was uploaded. */
  reused: boolean;
  /** Payload bytes sent this time (blocks, or parts). */
  bytesSent: number;
  sha256: string;
}

export interface PushContext {
  clients: AwsClients;
  journal: AwsJournal;
  state: UploadStateStore;
  emit: Emit;
}

/** What the file is, read from its first and last bytes: raw, vmdk, or a clear refusal. */
export async function diskFileFormat(path: string): Promise<'raw' | 'vmdk'> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new TskitError(`cannot read ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new TskitError(`${path} is not a file`);
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(info.size, 0x8006));
    await file.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(info.size, 512));
    await file.read(tail, 0, tail.length, info.size - tail.length);
    const format = sniffDiskFormat(head, tail);
    if (format === 'vmdk') return 'vmdk';
    if (format === 'iso') throw new TskitError(`${path} is an ISO image; EC2 cannot boot one: build a raw disk (tskit build -f aws, raw-bios or raw-efi) or a VMDK`);
    if (format !== 'raw') throw new TskitError(`${path} is ${formatArticle(format)} disk; tskit push aws takes a raw disk (tskit build -f aws, raw-bios or raw-efi) or a VMDK (-f vmdk)`);
    if (info.size % 512 !== 0) throw new TskitError(`${path} is not a disk image: ${info.size} bytes is not a whole number of 512-byte sectors; tskit push aws takes a raw disk (-f aws, raw-bios, raw-efi) or a VMDK`);
    return 'raw';
  } finally {
    await file.close();
  }
}

export async function pushToAws(path: string, options: AwsPushOptions, context: PushContext): Promise<AwsPushResult> {
  const started = Date.now();
  const {emit} = context;
  const signal = options.signal;
  const format = await diskFileFormat(path);
  const method: PushMethod = options.method ?? 'ebs';
  if (method === 'import' && !options.bucket) throw new TskitError('--method import needs an S3 bucket to stage the disk in: pass --bucket B');

  // One read of the file: its digest (what the AMI is tagged with) and, for a raw disk, how
  // many EBS blocks are not zero (the upload's total).
  const digest = await fileDigest(path, {
    ...(signal ? {signal} : {}),
    ...(format === 'raw' ? {blockSize: EBS_BLOCK} : {}),
    progress: (done, total) => emit({type: 'progress', task: `read ${basename(path)}`, done, total, unit: 'bytes'}),
  });
  // VM Import reads VMDKs tskit does not (descriptor files): for import the disk is only probed.
  const disk = await openDisk(path, {format, ...(signal ? {signal} : {})}).catch(async (error: unknown) => {
    if (method === 'import' && format === 'vmdk') return undefined;
    if (format === 'vmdk' && (await isVmdkDescriptor(path))) throw new TskitError(`${path} is a VMDK descriptor whose data lives in separate extent files; push a single-file VMDK (monolithicSparse or streamOptimized), or use --method import`);
    throw error;
  });
  try {
    return await pushDisk(path, format, method, disk, digest, options, context, started);
  } finally {
    await disk?.close();
  }
}

async function isVmdkDescriptor(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(21);
    await file.read(head, 0, 21, 0);
    return head.toString('latin1') === '# Disk DescriptorFile';
  } finally {
    await file.close();
  }
}

async function pushDisk(path: string, format: 'raw' | 'vmdk', method: PushMethod, disk: OpenedDisk | undefined, digest: FileDigest, options: AwsPushOptions, context: PushContext, started: number): Promise<AwsPushResult> {
  const {sha256, nonZeroBlocks: expectedBlocks} = digest;
  const {clients, emit, journal} = context;
  const signal = options.signal;
  const {arch, bootMode} = await bootSettings(path, disk, options, emit);

  const tags: Record<string, string> = {
    Name: options.name ?? defaultName(path, sha256),
    [TAGS.digest]: `sha256:${sha256}`,
    [TAGS.source]: basename(path).slice(0, 255),
    [TAGS.created]: new Date().toISOString(),
    ...options.tags,
  };
  const name = options.name ?? defaultName(path, sha256);

  if (options.bucket && method === 'import') await checkBucket(clients, options.bucket, signal);
  const existing = await findImageByDigest(clients, sha256, signal);
  if (existing && !options.force && existing.architecture === arch && (!bootMode || !existing.bootMode || existing.bootMode === bootMode)) {
    emit({type: 'log', level: 'info', message: `${existing.imageId} (${existing.name}) already holds this image (sha256:${sha256.slice(0, 12)}); not uploading again (--force to)`});
    return {imageId: existing.imageId, snapshotId: existing.snapshotIds[0] ?? '', region: clients.region, seconds: (Date.now() - started) / 1000, name: existing.name, method, arch, ...(bootMode ? {bootMode} : {}), reused: true, bytesSent: 0, sha256};
  }
  const sameName = await findImageByName(clients, name, signal);
  if (sameName && (!options.force || !sameName.tags[TAGS.digest])) throw new TskitError(`an AMI named ${name} already exists (${sameName.imageId}): choose another --name${sameName.tags[TAGS.digest] ? ', or replace it with --force' : ''}`);

  const description = `tskit ${basename(path)} sha256:${sha256.slice(0, 12)}`;
  let snapshotId: string;
  let bytesSent: number;
  if (method === 'ebs') {
    if (!disk) throw new TskitError(`${path} cannot be read for the EBS upload`);
    const result = await uploadToEbsSnapshot({clients, disk: disk.image, digest: sha256, label: path, ...(expectedBlocks !== undefined ? {expectedBlocks} : {}), description, tags, journal, state: context.state, emit, ...(signal ? {signal} : {}), ...(options.concurrency ? {concurrency: options.concurrency} : {})});
    snapshotId = result.snapshotId;
    bytesSent = result.bytesSent;
  } else {
    const bucket = options.bucket!;
    const key = `tskit/${sha256}.${format}`;
    const size = (await stat(path)).size;
    const uploaded = await uploadToS3({clients, path, size, sha256, bucket, key, journal, emit, ...(signal ? {signal} : {}), ...(options.concurrency ? {concurrency: options.concurrency} : {})});
    bytesSent = uploaded.bytesSent;
    snapshotId = await importSnapshot({clients, bucket, key, format: format === 'vmdk' ? 'VMDK' : 'RAW', description, tags, journal, emit, ...(options.roleName ? {roleName: options.roleName} : {}), ...(signal ? {signal} : {})});
    if (!options.keepObject) {
      await named('DeleteObject', clients.s3.send(new clients.sdk.s3.DeleteObjectCommand({Bucket: bucket, Key: key})));
      await journal.forget({provider: 'aws', kind: 's3-object', id: `${bucket}/${key}`, region: clients.region});
    }
  }

  // The AMI is tagged with the digest read before the upload: the file must still be those bytes.
  await checkUnchanged(path, digest);
  // Replaced only now that the new snapshot exists: a failed upload leaves the old AMI alone.
  if (sameName) {
    emit({type: 'log', level: 'info', message: `--force: deregistering ${sameName.imageId} (${name}) and deleting its snapshots`});
    await deleteImage(clients, sameName.imageId, signal);
  }
  const imageId = await registerImage(clients, {name, description, snapshotId, arch, ...(bootMode ? {bootMode} : {}), ena: options.ena ?? true, tags, ...(signal ? {signal} : {})}).catch((error: unknown) => {
    throw awsError(error, 'RegisterImage');
  });
  emit({type: 'resource.created', provider: 'aws', kind: 'image', id: imageId});
  await waitImageAvailable(clients, imageId, signal);
  // The snapshot now belongs to the AMI, which is the product of the push, not debris.
  await journal.forget({provider: 'aws', kind: 'snapshot', id: snapshotId, region: clients.region});
  return {imageId, snapshotId, region: clients.region, seconds: (Date.now() - started) / 1000, name, method, arch, ...(bootMode ? {bootMode} : {}), reused: false, bytesSent, sha256};
}

function defaultName(path: string, sha256: string): string {
  // AMI names: 3-128 characters of letters, digits and ()[]./'@_- and space.
  return contentName(basename(path).replace(/\.(img|raw|vmdk)$/i, '').slice(0, 100) || 'image', sha256, {maxLength: 128, illegal: /[^A-Za-z0-9()[\]./'@_ -]/g});
}

/** Architecture and boot mode: flags win; otherwise what the disk says; nothing known is an error. */
async function bootSettings(path: string, disk: OpenedDisk | undefined, options: AwsPushOptions, emit: Emit): Promise<{arch: Architecture; bootMode?: BootMode}> {
  if (!disk) {
    if (!options.arch) emit({type: 'log', level: 'info', message: `${basename(path)} is not read by tskit (VM Import reads it); assuming x86_64 (--arch to say otherwise)`});
    return {arch: options.arch ?? 'x86_64', ...(options.boot ? {bootMode: options.boot} : {})};
  }
  const chosen = chooseBoot({probe: await disk.probe(), name: basename(path), ...(options.boot ? {boot: options.boot} : {}), ...(options.arch ? {arch: options.arch} : {}), spell: AWS_BOOT_SPELLING, emit});
  if (!chosen.boot) throw new TskitError(`${path} has no MBR boot code and no EFI system partition, so EC2 cannot boot it; build it with -f aws, raw-bios or raw-efi, or pass --boot and --arch if you know better`);
  if (!chosen.arch) throw new TskitError(`${path}: cannot tell its architecture (${chosen.said || 'no EFI loader found'}); pass --arch x86_64 or --arch arm64`);
  return {arch: chosen.arch, bootMode: chosen.boot};
}
