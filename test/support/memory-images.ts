// An in-memory ImageSource for unit tests of assembly: images made from entry lists, with
// real gzip'd tar layers written by our tar writer, addressed by their sha256.
import {createHash} from 'node:crypto';
import {gzipSync} from 'node:zlib';
import type {Entry} from '../../src/build/entry.ts';
import {writeTar} from '../../src/build/tar/writer.ts';
import type {ContainerConfig, Descriptor, ImageSource, Platform, ResolvedImage} from '../../src/oci/types.ts';

async function bytesOf(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  return bytesOf(writeTar(entries));
}

export class MemoryImages implements ImageSource {
  private readonly images = new Map<string, ResolvedImage>();
  private readonly blobs = new Map<string, Buffer>();
  resolved: string[] = [];
  /** Makes openBlob fail for this digest (to test failures mid-build). */
  failOn?: string;
  /** How many times each blob was opened. */
  opened = new Map<string, number>();
  /** Derived data, as the cache keeps it (set to undefined to have none). */
  derived: Map<string, Buffer> | undefined = new Map();

  async readDerived(kind: string, digest: string): Promise<Buffer | undefined> {
    return this.derived?.get(`${kind}/${digest}`);
  }

  async writeDerived(kind: string, digest: string, data: Buffer): Promise<void> {
    this.derived?.set(`${kind}/${digest}`, data);
  }

  async add(ref: string, layers: Entry[][], config: ContainerConfig = {}): Promise<ResolvedImage> {
    const descriptors: Descriptor[] = [];
    for (const layer of layers) {
      const blob = gzipSync(await tarOf(layer));
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      this.blobs.set(digest, blob);
      descriptors.push({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length});
    }
    const image: ResolvedImage = {
      ref,
      digest: `sha256:${createHash('sha256').update(ref).digest('hex')}`,
      manifest: {schemaVersion: 2, config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:0', size: 0}, layers: descriptors},
      config: {architecture: 'amd64', os: 'linux', config, rootfs: {type: 'layers', diff_ids: []}},
      layers: descriptors,
    };
    this.images.set(ref, image);
    return image;
  }

  async resolve(ref: string, platform: Platform): Promise<ResolvedImage> {
    void platform;
    this.resolved.push(ref);
    const image = this.images.get(ref);
    if (!image) throw new Error(`no test image ${ref}`);
    return image;
  }

  async openBlob(image: ResolvedImage, descriptor: Descriptor) {
    void image;
    const blob = this.blobs.get(descriptor.digest);
    if (!blob) throw new Error(`no blob ${descriptor.digest}`);
    this.opened.set(descriptor.digest, (this.opened.get(descriptor.digest) ?? 0) + 1);
    const fail = this.failOn === descriptor.digest;
    const {Readable} = await import('node:stream');
    return Readable.from(
      (async function* () {
        yield blob.subarray(0, blob.length >> 1);
        if (fail) throw new Error('simulated failure while reading a layer');
        yield blob.subarray(blob.length >> 1);
      })(),
    );
  }
}
