// Test material: small OCI images written as OCI image layouts by hand (single-platform
// manifests or multi-platform indexes, gzip/uncompressed/zstd layers), and pushed to a real
// registry with skopeo. Not product code.
import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {PassThrough} from 'node:stream';
import {promisify} from 'node:util';
import {gzipSync, zstdCompressSync} from 'node:zlib';
import {LayoutTarWriter} from '../../src/oci/layout-tar.ts';
import {MediaTypes, type Descriptor, type ImageIndex, type ImageManifest, type Platform} from '../../src/oci/types.ts';

const run = promisify(execFile);

export type Files = Record<string, string | Buffer>;

export interface TestImage {
  architecture: string;
  os?: string;
  variant?: string;
  /** Layers, bottom first; each a map of path -> content, or a ready tar (any entries at all). */
  layers: Array<Files | Buffer>;
  compression?: 'gzip' | 'none' | 'zstd';
  cmd?: string[];
  /** Put the variant into the index descriptor only (as real arm64 indexes do), not the config. */
  variantInIndexOnly?: boolean;
}

export interface WrittenImage {
  platform: Platform;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

export interface WrittenLayout {
  dir: string;
  tag: string;
  /** What index.json points at: the image index, or the single manifest. */
  root: Descriptor;
  images: WrittenImage[];
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A tar of `files` (directories created for nested paths), deterministic. */
export async function tarOf(files: Files): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const writer = new LayoutTarWriter(out, 1_500_000_000);
  const dirs = new Set<string>();
  for (const path of Object.keys(files).sort()) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) {
        dirs.add(dir);
        await writer.directory(dir);
      }
    }
    const content = files[path]!;
    await writer.file(path, Buffer.isBuffer(content) ? content : Buffer.from(content));
  }
  await writer.finish();
  return Buffer.concat(chunks);
}

async function writeBlob(dir: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return digest;
}

/**
 * Writes an OCI image layout at `dir` whose index.json names `tag`: one manifest for a single
 * image, or an image index when `images` is an array (or `index` is set).
 */
export async function writeOciLayout(dir: string, tag: string, images: TestImage | TestImage[]): Promise<WrittenLayout> {
  await mkdir(join(dir, 'blobs', 'sha256'), {recursive: true});
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}));
  const list = Array.isArray(images) ? images : [images];
  const written: WrittenImage[] = [];
  for (const image of list) {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const files of image.layers) {
      const tar = Buffer.isBuffer(files) ? files : await tarOf(files);
      diffIds.push(sha256(tar));
      const compression = image.compression ?? 'gzip';
      const bytes = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar;
      const mediaType = compression === 'gzip' ? MediaTypes.ociLayerGzip : compression === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.ociLayer;
      layers.push({mediaType, digest: await writeBlob(dir, bytes), size: bytes.length});
    }
    const platform: Platform = {os: image.os ?? 'linux', architecture: image.architecture};
    if (image.variant) platform.variant = image.variant;
    const config = Buffer.from(
      JSON.stringify({
        architecture: image.architecture,
        os: platform.os,
        ...(image.variant && !image.variantInIndexOnly ? {variant: image.variant} : {}),
        config: {Cmd: image.cmd ?? ['/bin/sh'], Env: ['PATH=/usr/bin:/bin']},
        rootfs: {type: 'layers', diff_ids: diffIds},
      }),
    );
    const configDescriptor: Descriptor = {mediaType: MediaTypes.ociConfig, digest: await writeBlob(dir, config), size: config.length};
    const manifest: ImageManifest = {schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDescriptor, layers};
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    written.push({
      platform,
      manifest: {mediaType: MediaTypes.ociManifest, digest: await writeBlob(dir, manifestBytes), size: manifestBytes.length, platform},
      config: configDescriptor,
      layers,
      diffIds,
    });
  }
  let root: Descriptor;
  if (Array.isArray(images)) {
    const index: ImageIndex = {schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: written.map((w) => w.manifest)};
    const bytes = Buffer.from(JSON.stringify(index));
    root = {mediaType: MediaTypes.ociIndex, digest: await writeBlob(dir, bytes), size: bytes.length};
  } else {
    const {platform: _platform, ...manifest} = written[0]!.manifest;
    root = manifest;
  }
  const rootIndex: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [{...root, annotations: {'org.opencontainers.image.ref.name': tag}}],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(rootIndex));
  return {dir, tag, root, images: written};
}

export interface PushOptions {
  /** `v2s2` converts to Docker schema 2 manifests (and manifest lists). */
  format?: 'oci' | 'v2s2';
  /** user:password for the destination. */
  creds?: string;
}

/** Pushes an OCI layout to `docker://host/repo:tag` with skopeo; returns the pushed root digest. */
export async function pushLayout(layout: WrittenLayout, host: string, repoTag: string, options: PushOptions = {}): Promise<string> {
  const args = ['copy', '--quiet', '--all', '--dest-tls-verify=false'];
  if (options.format) args.push('--format', options.format);
  // What we wrote is what the registry gets, unless a conversion was asked for.
  if (options.format !== 'v2s2') args.push('--preserve-digests');
  if (options.creds) args.push('--dest-creds', options.creds);
  args.push(`oci:${layout.dir}:${layout.tag}`, `docker://${host}/${repoTag}`);
  await run('skopeo', args, {timeout: 120_000});
  return inspectDigest(host, repoTag, options.creds);
}

/** The digest of what the registry serves for host/repo:tag (from its raw manifest). */
export async function inspectDigest(host: string, repoTag: string, creds?: string): Promise<string> {
  const raw = await rawManifest(host, repoTag, creds);
  return sha256(raw);
}

export async function rawManifest(host: string, repoTag: string, creds?: string): Promise<Buffer> {
  const args = ['inspect', '--raw', '--tls-verify=false'];
  if (creds) args.push('--creds', creds);
  args.push(`docker://${host}/${repoTag}`);
  const {stdout} = await run('skopeo', args, {timeout: 60_000, encoding: 'buffer', maxBuffer: 16 * 1024 * 1024});
  return stdout as unknown as Buffer;
}

/** Path of a blob's data file in a distribution filesystem storage directory. */
export function registryBlobPath(storageDir: string, digest: string): string {
  const hex = digest.slice(digest.indexOf(':') + 1);
  return join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
