// Platform selection: which manifest of an index serves `--arch`, with containerd's
// normalisation (x86_64 is amd64, aarch64 is arm64, arm64's v8 is the same as no variant)
// and its ordering of compatible variants, but never a different architecture (no 386
// fallback for amd64, no 32-bit arm for arm64): tskit builds for the kernel it was told.
import {TskitError} from '../errors.ts';
import {MediaTypes, type Descriptor, type ImageConfiguration, type ImageIndex, type Platform} from './types.ts';

/** The architectures `--arch` accepts, by their OCI names. */
export const SUPPORTED_ARCHITECTURES = ['amd64', 'arm64', 'riscv64'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  riscv64: 'riscv64',
  i386: '386',
  i686: '386',
  armhf: 'arm',
  armel: 'arm',
};

/** OCI architecture name for `uname -m` or Go spellings; unknown names pass through lowercased. */
export function normalizeArchitecture(arch: string): string {
  const lower = arch.toLowerCase();
  return ARCH_ALIASES[lower] ?? lower;
}

/** Normalises a platform the way containerd's platforms.Normalize does (for the architectures we care about). */
export function normalizePlatform(platform: Platform): Platform {
  const architecture = normalizeArchitecture(platform.architecture);
  let variant = platform.variant ?? '';
  const rawArch = platform.architecture.toLowerCase();
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  if (architecture === 'arm64' && (variant === '8' || variant === 'v8' || variant === 'v8.0')) variant = '';
  if (architecture === 'riscv64' && variant === 'rva20u64') variant = '';
  if (architecture === 'arm') {
    if (rawArch === 'armhf' && variant === '') variant = 'v7';
    if (rawArch === 'armel' && variant === '') variant = 'v6';
    if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
  }
  const normalized: Platform = {architecture, os: (platform.os || 'linux').toLowerCase()};
  if (variant) normalized.variant = variant;
  return normalized;
}

/** The platform tskit builds for, from an `--arch` value (amd64, arm64, riscv64, or x86_64/aarch64). */
export function platformForArch(arch: string): Platform {
  const architecture = normalizeArchitecture(arch);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new TskitError(`unsupported architecture ${JSON.stringify(arch)}: use one of ${SUPPORTED_ARCHITECTURES.join(', ')} (x86_64 and aarch64 are accepted too)`);
  }
  return {os: 'linux', architecture};
}

/** The platform of the machine tskit runs on, for defaults. */
export function hostPlatform(): Platform {
  return {os: 'linux', architecture: normalizeArchitecture(process.arch === 'x64' ? 'amd64' : process.arch)};
}

/** `os/arch[/variant]`, as in `linux/arm64/v8`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, ...(platform.variant ? [platform.variant] : [])].join('/');
}

/** Parses `linux/arm64/v8`, `linux/amd64` or a bare architecture (`arm64`, `x86_64`). */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length === 1) return normalizePlatform({os: 'linux', architecture: parts[0] ?? ''});
  if (parts.length > 3 || parts.some((part) => part === '')) {
    throw new TskitError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/arm64`);
  }
  const platform: Platform = {os: parts[0] ?? '', architecture: parts[1] ?? ''};
  if (parts[2]) platform.variant = parts[2];
  return normalizePlatform(platform);
}

/**
 * Variants of `wanted`'s architecture that run where `wanted` runs, best first (containerd's
 * platform vector, restricted to one architecture): amd64/v3 takes v3, v2, then v1; arm64/v8.2
 * takes v8.2, v8.1, v8; arm64/v9.1 takes v9.1, v9.0 then v8.6 down to v8.
 */
function compatibleVariants(wanted: Platform): string[] {
  const variant = wanted.variant ?? '';
  switch (wanted.architecture) {
    case 'amd64': {
      const level = variant === '' ? 1 : Number(variant.replace(/^v/, ''));
      if (!Number.isInteger(level) || level < 1) return [variant];
      const list: string[] = [];
      for (let v = level; v >= 2; v--) list.push(`v${v}`);
      list.push('');
      return list;
    }
    case 'arm64': {
      const match = /^v(\d+)(?:\.(\d+))?$/.exec(variant);
      if (variant === '') return [''];
      if (!match) return [variant];
      const major = Number(match[1]);
      const minor = Number(match[2] ?? 0);
      const list: string[] = [];
      const pushV8 = (fromMinor: number) => {
        for (let m = fromMinor; m >= 1; m--) list.push(`v8.${m}`);
        list.push('');
      };
      if (major === 8) pushV8(minor);
      else if (major === 9) {
        for (let m = minor; m >= 1; m--) list.push(`v9.${m}`);
        list.push('v9', 'v9.0');
        pushV8(Math.min(minor + 5, 9));
      } else list.push(variant);
      return list;
    }
    default:
      return [variant];
  }
}

/**
 * How well `candidate` serves `wanted`: 0 is an exact match, higher is a worse but
 * compatible variant, undefined is unusable.
 */
export function platformRank(wanted: Platform, candidate: Platform): number | undefined {
  const want = normalizePlatform(wanted);
  const have = normalizePlatform(candidate);
  if (want.os !== have.os || want.architecture !== have.architecture) return undefined;
  const rank = compatibleVariants(want).indexOf(have.variant ?? '');
  return rank >= 0 ? rank : undefined;
}

export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  return platformRank(wanted, candidate) !== undefined;
}

const MANIFEST_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

/** True for index entries that are attestations or other metadata rather than runnable images. */
function isMetadataEntry(descriptor: Descriptor): boolean {
  const p = descriptor.platform;
  return p !== undefined && p.os === 'unknown' && p.architecture === 'unknown';
}

/** The platforms an index offers runnable images for, for messages (nested indexes not included). */
export function indexPlatforms(index: ImageIndex): string[] {
  return index.manifests
    .filter((m) => m.platform && !isMetadataEntry(m) && !INDEX_TYPES.has(m.mediaType))
    .map((m) => formatPlatform(m.platform as Platform));
}

/**
 * Picks the manifest for `wanted` from an index: the best-ranked compatible variant, the
 * first in index order among equals. Throws a TskitError listing what the index offers.
 */
export function selectManifest(index: ImageIndex, wanted: Platform, ref: string): Descriptor {
  return select(index, wanted, ref, false);
}

/**
 * As selectManifest, but an entry may also be a nested index to look in (one for `wanted`,
 * or one that names no platform), after every matching manifest: the caller descends.
 */
export function selectEntry(index: ImageIndex, wanted: Platform, ref: string): Descriptor {
  return select(index, wanted, ref, true);
}

function select(index: ImageIndex, wanted: Platform, ref: string, nested: boolean): Descriptor {
  let best: {descriptor: Descriptor; rank: number} | undefined;
  let nestedOffered = false;
  for (const descriptor of index.manifests ?? []) {
    if (isMetadataEntry(descriptor)) continue;
    let rank: number | undefined;
    if (descriptor.mediaType && INDEX_TYPES.has(descriptor.mediaType)) {
      const r = descriptor.platform ? platformRank(wanted, descriptor.platform) : 1000;
      if (r === undefined) continue;
      nestedOffered = true;
      if (!nested) continue;
      rank = 1000 + r; // after every manifest that matches
    } else {
      if (!descriptor.platform) continue;
      if (descriptor.mediaType && !MANIFEST_TYPES.has(descriptor.mediaType)) continue;
      rank = platformRank(wanted, descriptor.platform);
    }
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = {descriptor, rank};
  }
  if (best) return best.descriptor;
  if (nestedOffered) {
    throw new TskitError(`image ${ref} has no ${formatPlatform(wanted)} image in its index itself, only in an index nested in it, which this command does not follow`);
  }
  const offered = indexPlatforms(index);
  throw new TskitError(
    `image ${ref} has no ${formatPlatform(wanted)} image: ${offered.length ? `its index offers ${offered.join(', ')}` : 'its index lists no platforms'}`,
  );
}

/** Checks that a single-platform image's configuration is for `wanted`. */
export function checkImagePlatform(config: ImageConfiguration, wanted: Platform, ref: string): void {
  const have: Platform = {os: config.os || 'linux', architecture: config.architecture ?? ''};
  if (config.variant) have.variant = config.variant;
  if (!config.architecture) throw new TskitError(`image ${ref} has a configuration without an architecture`);
  if (platformRank(wanted, have) === undefined) {
    throw new TskitError(`image ${ref} is a single-platform image for ${formatPlatform(normalizePlatform(have))}, not ${formatPlatform(wanted)}`);
  }
}
