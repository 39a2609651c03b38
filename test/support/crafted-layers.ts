// Test material: hostile layers made by hand, byte by byte, the way an attacker would make
// them (tar headers no honest writer produces), plus the image around them, served by the
// hostile registry. Big payloads are gzip members of repeated bytes joined together (a valid
// multi-member gzip stream), so a 1.5 GiB record costs a megabyte here. Not product code.
import {gzipSync} from 'node:zlib';
import {MediaTypes} from '../../src/oci/types.ts';
import {sha256, type HostileRegistry} from './hostile-registry.ts';

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0').slice(-(width - 1)) + '\0';
}

export interface HeaderOptions {
  linkname?: string;
  mode?: number;
  mtime?: number;
  /** How the size is written: octal text (the default), GNU base-256, or not a number at all. */
  sizeField?: 'octal' | 'base256' | 'garbage';
  /** A checksum one off. */
  badChecksum?: boolean;
}

/** One ustar header block (name and link truncated to 100 bytes: long ones go in PAX or GNU records). */
export function tarHeader(name: string, type: string, size: number, options: HeaderOptions = {}): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name.slice(0, 100), 0, 'utf8');
  block.write(octal(options.mode ?? 0o644, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  if (options.sizeField === 'base256') {
    block[124] = 0x80;
    block.writeBigUInt64BE(BigInt(size), 128);
  } else if (options.sizeField === 'garbage') {
    block.write('12x4 5\0', 124, 'latin1');
  } else {
    block.write(octal(size, 12), 124, 'ascii');
  }
  block.write(octal(options.mtime ?? 0, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(type, 156, 'latin1');
  if (options.linkname) block.write(options.linkname.slice(0, 100), 157, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(options.badChecksum ? sum + 1 : sum, 7) + ' ', 148, 'ascii');
  return block;
}

export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return Buffer.from(`${length}${body}`);
}

export const pad = (size: number): Buffer => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
export const END = Buffer.alloc(BLOCK * 2);

/** A member: header, body, padding. */
export function member(name: string, type: string, body: Buffer = Buffer.alloc(0), options: HeaderOptions = {}): Buffer {
  return Buffer.concat([tarHeader(name, type, body.length, options), body, pad(body.length)]);
}

/** A file whose name is given by a PAX path record (any length). */
export function paxFile(path: string, content: string): Buffer {
  const record = paxRecord('path', path);
  return Buffer.concat([member('PaxHeader', 'x', record), member('placeholder', '0', Buffer.from(content))]);
}

/** gzip of `bytes` repeated `count` times, as joined gzip members: cheap however big. */
export function gzipRepeated(chunk: Buffer, count: number): Buffer {
  const one = gzipSync(chunk, {level: 9});
  return Buffer.concat(Array.from({length: count}, () => one));
}

/**
 * A gzip'd layer whose first member is a special record (PAX 'x' or GNU 'L') claiming
 * `size` bytes of 'a', followed by a file: `size` bytes cost about size/1000 here.
 */
export function hugeRecordLayer(type: 'x' | 'L', size: number): Buffer {
  const MiB = 1024 * 1024;
  if (size % MiB !== 0) throw new Error('size must be whole MiB');
  const prefix = type === 'x' ? '9999999999 path=' : '';
  const head = gzipSync(Buffer.concat([tarHeader(type === 'x' ? 'PaxHeader' : '././@LongLink', type, size), Buffer.from(prefix)]));
  const body = gzipRepeated(Buffer.alloc(MiB, 'a'), size / MiB - 1);
  const tailChunk = Buffer.alloc(MiB - prefix.length, 'a');
  const tail = gzipSync(Buffer.concat([tailChunk.subarray(0, tailChunk.length - 1), Buffer.from(type === 'x' ? '\n' : '\0'), member('file', '0', Buffer.from('x')), END]));
  return Buffer.concat([head, body, tail]);
}

export interface CraftedImage {
  ref: string;
  layerDigest: string;
  manifestDigest: string;
}

/** Serves a single-platform amd64 image with these layers (each blob as given, its media type from its first bytes). */
export function serveImage(registry: HostileRegistry, repository: string, tag: string, layers: Array<{blob: Buffer; diffId?: string}>): CraftedImage {
  const descriptors = layers.map(({blob}) => {
    const gz = blob[0] === 0x1f && blob[1] === 0x8b;
    const mediaType = gz ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer;
    return {mediaType, digest: registry.put(blob, mediaType), size: blob.length};
  });
  const diffIds = layers.map(({blob, diffId}) => diffId ?? (blob[0] === 0x1f ? undefined : sha256(blob)));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {Cmd: ['/bin/sh']},
      rootfs: {type: 'layers', diff_ids: diffIds.every((d) => d !== undefined) ? diffIds : []},
    }),
  );
  const configDescriptor = {mediaType: MediaTypes.ociConfig, digest: registry.put(config, MediaTypes.ociConfig), size: config.length};
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDescriptor, layers: descriptors}));
  const manifestDigest = registry.put(manifest, MediaTypes.ociManifest);
  registry.tag(repository, tag, manifestDigest);
  return {ref: `${registry.host}/${repository}:${tag}`, layerDigest: descriptors[0]!.digest, manifestDigest};
}
