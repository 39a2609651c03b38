// The fixture images as the registry from test/global-setup.ts serves them: every tag at the
// digest the recipe computed, LinuxKit's kernel image layout, the multi-platform index, the
// label, the quick-start template's references - and the recipe's determinism.
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Readable} from 'node:stream';
import {createGunzip} from 'node:zlib';
import {extract} from 'tar-stream';
import {describe, expect, inject, it} from 'vitest';
import {parse} from 'yaml';
import {buildFixturesAt, LABELLED_CONFIG, REPO_ROOT} from '../fixtures/make-fixtures.ts';

const registry = inject('tskitRegistry');
const fixtures = inject('tskitFixtures');

const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: {architecture: string; os: string; variant?: string};
  annotations?: Record<string, string>;
}

async function manifest(repository: string, reference: string): Promise<{digest: string; body: {mediaType: string; manifests?: Descriptor[]; layers?: Descriptor[]; config?: Descriptor}}> {
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${reference}`, {headers: {accept: ACCEPT}});
  expect(response.status, `${repository}:${reference}`).toBe(200);
  return {digest: response.headers.get('docker-content-digest') ?? '', body: (await response.json()) as never};
}

async function blob(repository: string, digest: string): Promise<Response> {
  const response = await fetch(`http://${registry}/v2/${repository}/blobs/${digest}`);
  expect(response.status, `${repository}@${digest}`).toBe(200);
  return response;
}

interface TarMember {
  name: string;
  type: string;
  size: number;
  linkname?: string;
  content?: Buffer;
}

/** Lists a gzip'd (or plain) tar, keeping the content of members `keep` accepts. */
async function readTar(source: Readable, gzip: boolean, keep: (name: string) => boolean = () => false): Promise<TarMember[]> {
  const members: TarMember[] = [];
  const tar = extract();
  const input = gzip ? source.pipe(createGunzip()) : source;
  input.pipe(tar as unknown as NodeJS.WritableStream);
  for await (const entry of tar) {
    const {name, type, size, linkname} = entry.header;
    const chunks: Buffer[] = [];
    for await (const chunk of entry) if (keep(name)) chunks.push(chunk as Buffer);
    members.push({name, type, size: size ?? 0, ...(linkname ? {linkname} : {}), ...(keep(name) ? {content: Buffer.concat(chunks)} : {})});
  }
  return members;
}

describe('fixture registry (test/global-setup.ts)', () => {
  it('serves every fixture tag at the digest the recipe computed', async () => {
    expect(registry).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(process.env.TSKIT_TEST_REGISTRY).toBe(registry);
    expect(inject('tskitMirror')).toBe(`localhost:5000=http://${registry}`);
    expect(inject('tskitRegistryUrl')).toBe(`http://${registry}`);
    expect(fixtures.images.map((image) => image.ref).sort()).toEqual([
      'tskit/bootloader:1',
      'tskit/busybox:1',
      'tskit/busybox:1-arm64',
      'tskit/init:1',
      'tskit/init:1-arm64',
      'tskit/kernel:6.1',
      'tskit/kernel:6.1-arm64',
      'tskit/kernel:6.1-builtin',
      'tskit/kernel:6.1-ucode',
      'tskit/labelled:1',
      'tskit/multiarch:1',
      'tskit/runc:1',
      'tskit/runc:1-arm64',
    ]);
    for (const image of fixtures.images) {
      const served = await manifest(image.repository, image.tag);
      expect(served.digest, image.ref).toBe(image.digest);
      expect(served.body.mediaType).toBe(image.mediaType);
    }
  });

  it('lays the kernel image out like linuxkit/kernel: /kernel, /kernel.tar with depmod output, /System.map; 6.1-ucode adds /intel-ucode.cpio', async () => {
    const {body} = await manifest('tskit/kernel', '6.1');
    expect(body.layers).toHaveLength(1);
    const layer = await blob('tskit/kernel', body.layers![0]!.digest);
    const members = await readTar(Readable.fromWeb(layer.body! as never), true, (name) => name === 'kernel.tar' || name === 'kernel');
    expect(members.map((member) => member.name)).toEqual(['System.map', 'kernel', 'kernel.tar']);
    const bzImage = members.find((member) => member.name === 'kernel')!.content!;
    expect(bzImage.subarray(0x202, 0x206).toString('latin1')).toBe('HdrS');

    const kernelTar = members.find((member) => member.name === 'kernel.tar')!.content!;
    const version = fixtures.kernel.version;
    const modulesDir = `./lib/modules/${version}/`;
    const inner = await readTar(Readable.from([kernelTar]), false, (name) => name.endsWith('/modules.dep'));
    const names = inner.map((member) => member.name);
    expect(names[0]).toBe('./');
    expect(names).toContain(`${modulesDir}kernel/fs/overlayfs/overlay.ko`);
    for (const generated of ['modules.dep', 'modules.dep.bin', 'modules.alias', 'modules.symbols', 'modules.builtin', 'modules.order']) {
      expect(names).toContain(`${modulesDir}${generated}`);
    }
    const dep = inner.find((member) => member.name.endsWith('/modules.dep'))!.content!.toString();
    expect(dep).toMatch(/^kernel\/drivers\/block\/virtio_blk\.ko: .*kernel\/drivers\/virtio\/virtio_ring\.ko/m);
    for (const module of ['virtio_pci', 'virtio_blk', 'virtio_net', 'overlay', 'squashfs', 'vfat', 'isofs']) {
      expect(fixtures.kernel.modules).toContain(module);
    }

    const ucode = await manifest('tskit/kernel', '6.1-ucode');
    expect(ucode.body.layers!.map((layer) => layer.digest).slice(0, 1)).toEqual([body.layers![0]!.digest]);
    const ucodeLayer = await blob('tskit/kernel', ucode.body.layers![1]!.digest);
    const ucodeMembers = await readTar(Readable.fromWeb(ucodeLayer.body! as never), true, () => true);
    expect(ucodeMembers.map((member) => member.name)).toEqual(['intel-ucode.cpio']);
    const cpio = ucodeMembers[0]!.content!;
    expect(cpio.subarray(0, 6).toString('latin1')).toBe('070701');
    expect(cpio.length % 512).toBe(0);
    expect(cpio.toString('latin1')).toContain('kernel/x86/microcode/GenuineIntel.bin');
  });

  it('serves tskit/multiarch:1 as an index with arm64 first, amd64, riscv64 and an attestation, each naming its platform in /arch', async () => {
    const {body} = await manifest('tskit/multiarch', '1');
    expect(body.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const platforms = body.manifests!.map((entry) => [entry.platform!.os, entry.platform!.architecture, entry.platform!.variant].filter(Boolean).join('/'));
    expect(platforms).toEqual(['linux/arm64/v8', 'linux/amd64', 'linux/riscv64', 'unknown/unknown']);
    const attestation = body.manifests![3]!;
    expect(attestation.annotations).toEqual({'vnd.docker.reference.digest': body.manifests![1]!.digest, 'vnd.docker.reference.type': 'attestation-manifest'});
    for (const entry of body.manifests!.slice(0, 3)) {
      const image = await manifest('tskit/multiarch', entry.digest);
      const config = (await (await blob('tskit/multiarch', image.body.config!.digest)).json()) as {architecture: string; variant?: string};
      expect(config.architecture).toBe(entry.platform!.architecture);
      const top = image.body.layers!.at(-1)!;
      const members = await readTar(Readable.fromWeb((await blob('tskit/multiarch', top.digest)).body! as never), true, () => true);
      const name = [entry.platform!.os, entry.platform!.architecture, entry.platform!.variant].filter(Boolean).join('/');
      expect(members.find((member) => member.name === 'arch')?.content?.toString()).toBe(`${name}\n`);
    }
  });

  it('labels tskit/labelled:1 with org.mobyproject.config, and gives tskit/busybox:1 a Docker-style config', async () => {
    const labelled = await manifest('tskit/labelled', '1');
    const config = (await (await blob('tskit/labelled', labelled.body.config!.digest)).json()) as {config: {Labels: Record<string, string>; Cmd: string[]}};
    expect(JSON.parse(config.config.Labels['org.mobyproject.config']!)).toEqual(LABELLED_CONFIG);
    const busybox = await manifest('tskit/busybox', '1');
    expect(busybox.body.layers).toHaveLength(2);
    const busyboxConfig = (await (await blob('tskit/busybox', busybox.body.config!.digest)).json()) as {config: {Cmd: string[]; Env: string[]}};
    expect(busyboxConfig.config.Cmd).toEqual(['/bin/sh']);
    expect(busyboxConfig.config.Env[0]).toMatch(/^PATH=/);
  });

  it('holds every image templates/hello.yml names (localhost:5000 mirrored to this registry)', async () => {
    const doc = parse(await readFile(join(REPO_ROOT, 'templates', 'hello.yml'), 'utf8')) as {
      kernel: {image: string};
      init: string[];
      onboot: Array<{image: string}>;
      services: Array<{image: string}>;
    };
    const refs = [doc.kernel.image, ...doc.init, ...doc.onboot.map((entry) => entry.image), ...doc.services.map((entry) => entry.image)];
    for (const ref of refs) {
      const match = /^localhost:5000\/([^:]+):(.+)$/.exec(ref);
      expect(match, ref).not.toBeNull();
      await manifest(match![1]!, match![2]!);
    }
  });
});

describe('fixture recipe', () => {
  it('is deterministic: building again from the same .debs gives the same digests', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'tskit-fixtures-again-')), 'oci');
    try {
      const again = await buildFixturesAt(dir);
      expect(again.key).toBe(fixtures.key);
      expect(again.images.map((image) => [image.ref, image.digest])).toEqual(fixtures.images.map((image) => [image.ref, image.digest]));
    } finally {
      await rm(join(dir, '..'), {recursive: true, force: true});
    }
  });
});
