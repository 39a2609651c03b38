// OCI image-spec shapes used across tskit, and the one interface the build needs from
// the OCI layer: resolve a reference to a platform-specific image, then open its blobs.

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The `config` object inside an image configuration (Docker/OCI field names). */
export interface ContainerConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  StopSignal?: string;
}

export interface ImageConfiguration {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: ContainerConfig;
  rootfs: {type: 'layers'; diff_ids: string[]};
  history?: unknown[];
}

/** A reference resolved to one platform's image, with everything needed to unpack it. */
export interface ResolvedImage {
  /** The reference as the user wrote it, fully expanded (docker.io/library/alpine:3.20). */
  ref: string;
  /** Digest of the platform-specific image manifest. */
  digest: string;
  /** Digest of the index the manifest was picked from, when the reference named an index. */
  indexDigest?: string;
  manifest: ImageManifest;
  config: ImageConfiguration;
  /** Layer descriptors, bottom first. */
  layers: Descriptor[];
}

/** What assembly needs from the OCI layer; the cache implements it, tests may fake it. */
export interface ImageSource {
  resolve(ref: string, platform: Platform): Promise<ResolvedImage>;
  /** The blob's bytes, digest-verified, as a stream (compressed as stored). */
  openBlob(image: ResolvedImage, descriptor: Descriptor): Promise<NodeJS.ReadableStream & AsyncIterable<Uint8Array>>;
  /** Data derived from a blob that a source can keep for later builds (see ImageCache). */
  readDerived?(kind: string, digest: string): Promise<Buffer | undefined>;
  writeDerived?(kind: string, digest: string, data: Buffer): Promise<void>;
}

/**
 * Data derived from a blob, computed from its bytes while they download, so the first use of
 * a freshly pulled blob need not read it again (a layer's tar headers, say). The cache stores
 * the result with writeDerived's rules.
 */
export interface BlobDeriver {
  /** The derived data's kind (readDerived's `kind`). */
  kind: string;
  /** Whether to derive from this blob. */
  applies(descriptor: Descriptor): boolean;
  /**
   * The derived data from the blob's bytes, in order (not yet verified: the cache keeps the
   * result only if the blob turns out to be the one asked for). Undefined or a rejection:
   * nothing is stored, and whoever needs the data computes it later and reports what was wrong.
   */
  derive(bytes: AsyncIterable<Buffer>): Promise<Buffer | undefined>;
}

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** What `volumes:` with `format: oci` need beyond ImageSource: a resolved image as an OCI layout. */
export interface LayoutSource {
  /** The platforms a resolved reference's index lists (its own image only, for a single manifest: []). */
  platforms(ref: string): Promise<Platform[]>;
  /** The image as an OCI image layout written as a tar stream: the index as root, these platforms' images in it. */
  layoutTar(ref: string, platforms: Platform[]): AsyncIterable<Uint8Array>;
}
