// `tskit push aws`: a raw or VMDK disk file → an EBS snapshot → a registered AMI.
// Default method `ebs` (EBS direct APIs: only non-zero blocks travel, no S3 bucket, no
// vmimport role); method `import` goes through an S3 object and ImportSnapshot. An AMI
// already tagged with the file's sha256 is reused unless `force`.
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {open, stat, type FileHandle} from 'node:fs/promises';
import {basename} from 'node:path';
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import {sniffFormat} from '../qemu/image.ts';
import type {DiskImage} from '../../src/formats/disk.ts';
import {probeBoot, type Architecture, type BootMode, type ReadAt} from './boot-probe.ts';
import {uploadToEbsSnapshot} from './ebs-upload.ts';
import {awsError, named} from './errors.ts';
import {deleteImage, findImageByDigest, findImageByName, registerImage, TAGS, waitImageAvailable} from './images.ts';
import {importSnapshot} from './import-snapshot.ts';
import type {AwsJournal} from './journal.ts';
import {scanRawDisk, type ScannedDisk} from './raw-disk.ts';
import {openVmdk} from './vmdk-disk.ts';
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
    const head = Buffer.alloc(64 * 1024);
    await file.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(512);
    if (info.size >= 512) await file.read(tail, 0, 512, info.size - 512);
    const format = sniffFormat(head, tail);
    const names: Record<string, string> = {qcow2: 'a qcow2', vhdx: 'a VHDX', vpc: 'a VHD'};
    if (format === 'vmdk') return 'vmdk';
    if (format) throw new TskitError(`${path} is ${names[format]} disk; tskit push aws takes a raw disk (tskit build -f aws, raw-bios or raw-efi) or a VMDK (-f vmdk)`);
    if (head.subarray(0x8001, 0x8006).toString('latin1') === 'CD001') throw new TskitError(`${path} is an ISO image; EC2 cannot boot one: build a raw disk (tskit build -f aws, raw-bios or raw-efi) or a VMDK`);
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

  // One read of a raw file: its digest and which blocks are not zero. A VMDK is hashed, and
  // read through its grain tables (zero grains are not stored in it).
  const scanned = format === 'raw' ? await scanRawDisk(path, {signal, progress: (done, total) => emit({type: 'progress', task: `read ${basename(path)}`, done, total, unit: 'bytes'})}) : undefined;
  // VM Import reads VMDKs this reader does not (descriptor files): for import it is only the probe.
  const vmdk = format === 'vmdk' ? await openVmdk(path).catch((error: unknown) => {
    if (method === 'import') return undefined;
    throw error;
  }) : undefined;
  try {
    return await pushDisk(path, format, method, scanned ?? vmdk, scanned?.sha256 ?? (await fileSha256(path, signal)), options, context, started);
  } finally {
    await vmdk?.close();
  }
}

async function pushDisk(path: string, format: 'raw' | 'vmdk', method: PushMethod, disk: (DiskImage & {readAt?(offset: number, length: number): Promise<Buffer>}) | undefined, sha256: string, options: AwsPushOptions, context: PushContext, started: number): Promise<AwsPushResult> {
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
    const expectedBlocks = 'blocks' in disk ? (disk as ScannedDisk).blocks.length : undefined;
    const result = await uploadToEbsSnapshot({clients, disk, digest: sha256, label: path, ...(expectedBlocks !== undefined ? {expectedBlocks} : {}), description, tags, journal, state: context.state, emit, ...(signal ? {signal} : {}), ...(options.concurrency ? {concurrency: options.concurrency} : {})});
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
  const stem = basename(path).replace(/\.(img|raw|vmdk)$/i, '').replace(/[^A-Za-z0-9()[\]./'@_ -]/g, '-');
  // AMI names: 3-128 characters.
  return `${stem.slice(0, 100) || 'image'}-${sha256.slice(0, 12)}`;
}

async function fileSha256(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, {highWaterMark: 1024 * 1024, ...(signal ? {signal} : {})})) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Architecture and boot mode: flags win; otherwise what the disk says; nothing known is an error. */
async function bootSettings(path: string, disk: (DiskImage & {readAt?(offset: number, length: number): Promise<Buffer>}) | undefined, options: AwsPushOptions, emit: Emit): Promise<{arch: Architecture; bootMode?: BootMode}> {
  if (!disk) {
    if (!options.arch) emit({type: 'log', level: 'info', message: `${basename(path)} is not read by tskit (VM Import reads it); assuming x86_64 (--arch to say otherwise)`});
    return {arch: options.arch ?? 'x86_64', ...(options.boot ? {bootMode: options.boot} : {})};
  }
  let read: ReadAt;
  let file: FileHandle | undefined;
  if (disk.readAt) read = disk.readAt.bind(disk);
  else {
    const handle = await open(path, 'r');
    file = handle;
    read = async (offset, length) => {
      const buffer = Buffer.alloc(length);
      if (offset < disk.size) await handle.read(buffer, 0, Math.min(length, disk.size - offset), offset);
      return buffer;
    };
  }
  let probe;
  try {
    probe = await probeBoot(read);
  } finally {
    await file?.close();
  }
  const said = probe.evidence.join(', ');
  if (options.boot && probe.bootMode && options.boot !== probe.bootMode) emit({type: 'log', level: 'warn', message: `--boot ${options.boot} but the image looks ${probe.bootMode} (${said})`});
  if (options.arch && probe.arch && options.arch !== probe.arch) emit({type: 'log', level: 'warn', message: `--arch ${options.arch} but the image looks ${probe.arch} (${said})`});
  const bootMode = options.boot ?? probe.bootMode;
  const arch = options.arch ?? probe.arch;
  if (!bootMode) throw new TskitError(`${path} has no MBR boot code and no EFI system partition, so EC2 cannot boot it; build it with -f aws, raw-bios or raw-efi, or pass --boot and --arch if you know better`);
  if (!arch) throw new TskitError(`${path}: cannot tell its architecture (${said || 'no EFI loader found'}); pass --arch x86_64 or --arch arm64`);
  if (!options.boot || !options.arch) emit({type: 'log', level: 'debug', message: `${basename(path)}: boot mode ${bootMode}, architecture ${arch} (${said})`});
  return {arch, bootMode};
}
