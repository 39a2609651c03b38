// A layer as the tar stream it holds: the stored blob (digest-verified by the source),
// decompressed by what its first bytes say (gzip, zstd or plain tar, whatever the media type
// claims, as Docker does), and checked against the image configuration's diff_id.
import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import {createGunzip, createZstdDecompress} from 'node:zlib';
import {TskitError} from '../errors.ts';
import type {Descriptor, ImageSource, ResolvedImage} from './types.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

/** What a layer's first bytes say it is compressed with. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Yields `source`'s bytes, uncompressed. */
export async function* decompress(source: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLength = 0;
  let done = false;
  while (headLength < 4) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    head.push(chunk);
    headLength += chunk.length;
  }
  const prefix = Buffer.concat(head);
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (prefix.length) yield prefix;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    }
  };
  const kind = sniffCompression(prefix);
  if (kind === 'none') {
    yield* rest();
    return;
  }
  // big output chunks: every chunk is a round trip through the event loop and the tar reader
  const decompressor = kind === 'gzip' ? createGunzip({chunkSize: 256 * 1024}) : createZstdDecompress({chunkSize: 256 * 1024});
  const input = Readable.from(rest(), {objectMode: false});
  input.on('error', (error) => decompressor.destroy(error));
  input.pipe(decompressor);
  try {
    for await (const chunk of decompressor as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    if (error instanceof TskitError) throw error;
    throw new TskitError(`${what} is not valid ${kind} data: ${(error as Error).message}`, {cause: error});
  } finally {
    input.destroy();
  }
}

/**
 * Opens a layer of a resolved image as an uncompressed tar stream. When the image
 * configuration has a diff_id for the layer, the stream fails at its end if the
 * uncompressed bytes do not match it.
 */
export async function openLayer(source: ImageSource, image: ResolvedImage, descriptor: Descriptor): Promise<Readable & AsyncIterable<Buffer>> {
  const blob = await source.openBlob(image, descriptor);
  const position = image.layers.findIndex((layer) => layer.digest === descriptor.digest);
  const diffId = position >= 0 ? image.config.rootfs?.diff_ids?.[position] : undefined;
  const what = `layer ${descriptor.digest} of image ${image.ref}`;
  const verified = async function* (): AsyncGenerator<Buffer> {
    const algorithm = diffId?.slice(0, diffId.indexOf(':'));
    const hash = algorithm ? createHash(algorithm) : undefined;
    for await (const chunk of decompress(blob as AsyncIterable<Uint8Array>, what)) {
      hash?.update(chunk);
      yield chunk;
    }
    if (hash && diffId) {
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== diffId) throw new TskitError(`${what} uncompresses to ${actual}, but the image configuration gives diff_id ${diffId}`);
    }
  };
  return Readable.from(verified(), {objectMode: false}) as Readable & AsyncIterable<Buffer>;
}
