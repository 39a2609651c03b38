import {describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import {checkImagePlatform, formatPlatform, parsePlatform, platformForArch, selectManifest} from '../../../src/oci/platform.ts';
import {MediaTypes, type Descriptor, type ImageIndex, type Platform} from '../../../src/oci/types.ts';

let n = 0;
function entry(platform: Platform, mediaType: string = MediaTypes.ociManifest): Descriptor {
  n++;
  return {mediaType, digest: `sha256:${n.toString(16).padStart(64, '0')}`, size: 100, platform};
}
const index = (...manifests: Descriptor[]): ImageIndex => ({schemaVersion: 2, manifests});

describe('platform selection', () => {
  it('accepts amd64, arm64, riscv64 and the uname spellings', () => {
    expect(platformForArch('amd64')).toEqual({os: 'linux', architecture: 'amd64'});
    expect(platformForArch('x86_64')).toEqual({os: 'linux', architecture: 'amd64'});
    expect(platformForArch('aarch64')).toEqual({os: 'linux', architecture: 'arm64'});
    expect(platformForArch('riscv64')).toEqual({os: 'linux', architecture: 'riscv64'});
    expect(() => platformForArch('s390x')).toThrow(/unsupported architecture "s390x"/);
  });

  it('treats arm64/v8 as arm64 (containerd normalisation), both ways', () => {
    const v8 = entry({os: 'linux', architecture: 'arm64', variant: 'v8'});
    expect(selectManifest(index(entry({os: 'linux', architecture: 'amd64'}), v8), platformForArch('arm64'), 'x')).toBe(v8);
    const bare = entry({os: 'linux', architecture: 'arm64'});
    expect(selectManifest(index(bare), {os: 'linux', architecture: 'arm64', variant: 'v8'}, 'x')).toBe(bare);
  });

  it('never falls back to another architecture (no 386 for amd64, no arm for arm64)', () => {
    const idx = index(entry({os: 'linux', architecture: '386'}), entry({os: 'linux', architecture: 'arm', variant: 'v7'}));
    expect(() => selectManifest(idx, platformForArch('amd64'), 'r')).toThrow(TskitError);
    expect(() => selectManifest(idx, platformForArch('arm64'), 'r')).toThrow(TskitError);
  });

  it('skips attestation entries and other operating systems', () => {
    const attestation = entry({os: 'unknown', architecture: 'unknown'});
    const windows = entry({os: 'windows', architecture: 'amd64'});
    const linux = entry({os: 'linux', architecture: 'amd64'});
    expect(selectManifest(index(attestation, windows, linux), platformForArch('amd64'), 'r')).toBe(linux);
  });

  it('prefers the best compatible variant, then index order', () => {
    const v1 = entry({os: 'linux', architecture: 'amd64'});
    const v3 = entry({os: 'linux', architecture: 'amd64', variant: 'v3'});
    const v2 = entry({os: 'linux', architecture: 'amd64', variant: 'v2'});
    // Plain amd64 cannot run v2/v3 builds.
    expect(selectManifest(index(v3, v2, v1), platformForArch('amd64'), 'r')).toBe(v1);
    expect(selectManifest(index(v1, v2), {os: 'linux', architecture: 'amd64', variant: 'v3'}, 'r')).toBe(v2);
    const a = entry({os: 'linux', architecture: 'riscv64'});
    const b = entry({os: 'linux', architecture: 'riscv64'});
    expect(selectManifest(index(a, b), platformForArch('riscv64'), 'r')).toBe(a);
  });

  it('names the image and lists what the index offers when the platform is missing', () => {
    const idx = index(entry({os: 'linux', architecture: 'amd64'}), entry({os: 'linux', architecture: 'arm64', variant: 'v8'}), entry({os: 'unknown', architecture: 'unknown'}));
    expect(() => selectManifest(idx, platformForArch('riscv64'), 'docker.io/library/x:1')).toThrow(
      'image docker.io/library/x:1 has no linux/riscv64 image: its index offers linux/amd64, linux/arm64/v8',
    );
  });

  it('checks single-platform images by their configuration', () => {
    const config = {architecture: 'arm64', os: 'linux', rootfs: {type: 'layers' as const, diff_ids: []}};
    expect(() => checkImagePlatform(config, platformForArch('aarch64'), 'r')).not.toThrow();
    expect(() => checkImagePlatform(config, platformForArch('amd64'), 'example.com/r:1')).toThrow(
      'image example.com/r:1 is a single-platform image for linux/arm64, not linux/amd64',
    );
    expect(() => checkImagePlatform({...config, architecture: 'x86_64'}, platformForArch('amd64'), 'r')).not.toThrow();
  });

  it('parses and formats platform strings', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({os: 'linux', architecture: 'arm64'});
    expect(parsePlatform('x86_64')).toEqual({os: 'linux', architecture: 'amd64'});
    expect(formatPlatform({os: 'linux', architecture: 'arm', variant: 'v7'})).toBe('linux/arm/v7');
    expect(() => parsePlatform('linux//x')).toThrow(/invalid platform/);
  });
});
