// cache export / import: OCI layout tars that skopeo loads, layouts skopeo and others write,
// and every blob verified on the way in.
import {execFile} from 'node:child_process';
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {pipeline} from 'node:stream/promises';
import {promisify} from 'node:util';
import {createGzip} from 'node:zlib';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {TskitError} from '../../src/errors.ts';
import {ImageCache} from '../../src/oci/cache.ts';
import {exportImageToFile, importLayout} from '../../src/oci/cache-transfer.ts';
import {parseMirrors} from '../../src/oci/endpoints.ts';
import {LayoutTarWriter} from '../../src/oci/layout-tar.ts';
import {platformForArch} from '../../src/oci/platform.ts';
import {MediaTypes} from '../../src/oci/types.ts';
import {blobDigests, imageFiles, indexRefs, leftovers} from '../support/oci-cache-helpers.ts';
import {pushLayout, sha256, writeOciLayout, type WrittenLayout} from '../support/oci-images.ts';
import {startRegistry, type RunningRegistry} from '../support/registry.ts';

const run = promisify(execFile);
const amd64 = platformForArch('amd64');
const arm64 = platformForArch('arm64');
let registry: RunningRegistry;
let work: string;
let multi: WrittenLayout;
let multiDigest: string;
let source: ImageCache;
const offline = {mirrors: parseMirrors(['http://127.0.0.1:9']), retry: {attempts: 1}};

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tskit-oci-transfer-'));
  multi = await writeOciLayout(join(work, 'multi'), 'v1', [
    {architecture: 'amd64', layers: [{'etc/base': 'base'}, {'etc/arch': 'amd64'}]},
    {architecture: 'arm64', variant: 'v8', layers: [{'etc/base': 'base'}, {'etc/arch': 'arm64'}]},
  ]);
  multiDigest = await pushLayout(multi, registry.host, 'x/multi:v1');
  source = new ImageCache({dir: await mkdtemp(join(work, 'source-'))});
  await source.resolve(`${registry.host}/x/multi:v1`, amd64);
  await source.resolve(`${registry.host}/x/multi:v1`, arm64);
}, 120_000);

afterAll(async () => {
  await source?.close();
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

describe('cache export', () => {
  it('writes one platform as an OCI archive skopeo loads, and imports back', async () => {
    const file = join(work, 'arm64.tar');
    const ref = `${registry.host}/x/multi:v1`;
    const result = await exportImageToFile(source, ref, file, {platform: arm64});
    expect(result.root.digest).toBe(multi.images[1]!.manifest.digest);
    const out = await mkdtemp(join(work, 'skopeo-'));
    await run('skopeo', ['copy', '--quiet', `oci-archive:${file}`, `dir:${out}`]);
    expect(sha256(await readFile(join(out, 'manifest.json')))).toBe(multi.images[1]!.manifest.digest);

    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    const imported = await importLayout(target, file);
    expect(imported.images).toEqual([{ref, digest: multi.images[1]!.manifest.digest, mediaType: MediaTypes.ociManifest, platforms: ['linux/arm64/v8']}]);
    const image = await target.resolve(ref, arm64);
    expect(await imageFiles(target, image)).toEqual({'etc/base': 'base', 'etc/arch': 'arm64'});
    await target.close();
  });

  it('writes a whole index with --all (skopeo copies every platform) under another name', async () => {
    const file = join(work, 'all.tar');
    await exportImageToFile(source, `${registry.host}/x/multi:v1`, file, {all: true, name: 'example.com/renamed:2'});
    const out = await mkdtemp(join(work, 'skopeo-all-'));
    await run('skopeo', ['copy', '--quiet', '--all', `oci-archive:${file}`, `oci:${out}:copied`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
    expect(index.manifests[0]!.digest).toBe(multiDigest);

    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    const imported = await importLayout(target, file);
    expect(imported.images[0]).toMatchObject({ref: 'example.com/renamed:2', digest: multiDigest, platforms: ['linux/amd64', 'linux/arm64/v8']});
    expect((await target.resolve('example.com/renamed:2', amd64)).digest).toBe(multi.images[0]!.manifest.digest);
    await target.close();
  });

  it('refuses to export what the cache lacks', async () => {
    const partial = new ImageCache({dir: await mkdtemp(join(work, 'partial-'))});
    await partial.resolve(`${registry.host}/x/multi:v1`, amd64);
    await expect(exportImageToFile(partial, `${registry.host}/x/multi:v1`, join(work, 'no.tar'), {all: true})).rejects.toThrow('the cache lacks linux/arm64/v8');
    await expect(exportImageToFile(partial, 'nothere:1', join(work, 'no.tar'), {platform: amd64})).rejects.toThrow('docker.io/library/nothere:1 is not in the cache');
    await partial.close();
  });
});

describe('cache import', () => {
  it('imports an archive skopeo wrote, asking for a name when it carries only a tag', async () => {
    const file = join(work, 'from-skopeo.tar');
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--override-arch', 'amd64', `docker://${registry.host}/x/multi:v1`, `oci-archive:${file}:v1`]);
    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    await expect(importLayout(target, file)).rejects.toThrow('is named only "v1", not a full reference: give one with --name REF');
    expect(await blobDigests(target.dir)).toEqual([]);
    const imported = await importLayout(target, file, {name: 'example.com/from/skopeo:v1'});
    expect(imported.images[0]!.ref).toBe('example.com/from/skopeo:v1');
    expect(imported.newBlobs).toBe(4);
    const image = await target.resolve('example.com/from/skopeo:v1', amd64);
    expect(await imageFiles(target, image)).toEqual({'etc/base': 'base', 'etc/arch': 'amd64'});
    await target.close();
  });

  it('imports a layout directory with gzip, zstd and uncompressed layers, gzip\'d tars, and checks diff_ids', async () => {
    const dir = join(work, 'mixed-layout');
    const layout = await writeOciLayout(dir, 'example.com/mixed:1', [
      {architecture: 'amd64', layers: [{'a/gzip': 'g'}], compression: 'gzip'},
      {architecture: 'arm64', layers: [{'a/zstd': 'z'}], compression: 'zstd'},
      {architecture: 'riscv64', layers: [{'a/plain': 'p'}], compression: 'none'},
    ]);
    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    const imported = await importLayout(target, dir);
    expect(imported.images[0]).toMatchObject({ref: 'example.com/mixed:1', digest: layout.root.digest, platforms: ['linux/amd64', 'linux/arm64', 'linux/riscv64']});
    for (const [arch, files] of [['amd64', {'a/gzip': 'g'}], ['arm64', {'a/zstd': 'z'}], ['riscv64', {'a/plain': 'p'}]] as const) {
      expect(await imageFiles(target, await target.resolve('example.com/mixed:1', platformForArch(arch)))).toEqual(files);
    }

    // The same layout as a gzip'd tar, through export's writer.
    const tar = join(work, 'mixed.tar.gz');
    const out = createWriteStream(tar);
    const gzip = createGzip();
    const done = pipeline(gzip, out);
    const writer = new LayoutTarWriter(gzip);
    await writer.file('oci-layout', await readFile(join(dir, 'oci-layout')));
    for (const digest of await blobDigests(dir)) await writer.file(`blobs/sha256/${digest.slice(7)}`, await readFile(join(dir, 'blobs', 'sha256', digest.slice(7))));
    await writer.file('index.json', await readFile(join(dir, 'index.json')));
    await writer.finish();
    await done;
    const fromTar = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    expect((await importLayout(fromTar, tar)).images[0]!.digest).toBe(layout.root.digest);
    await fromTar.close();
    await target.close();
  });

  it('fails a layer whose uncompressed content does not match its diff_id', async () => {
    const dir = join(work, 'bad-diffid');
    const layout = await writeOciLayout(dir, 'example.com/bad:1', {architecture: 'amd64', layers: [{f: 'x'}]});
    // Rewrite the config with a wrong diff_id (and the manifest and index to match).
    const configPath = join(dir, 'blobs', 'sha256', layout.images[0]!.config.digest.slice(7));
    const config = JSON.parse(await readFile(configPath, 'utf8')) as {rootfs: {diff_ids: string[]}};
    config.rootfs.diff_ids = [`sha256:${'1'.repeat(64)}`];
    const configBytes = Buffer.from(JSON.stringify(config));
    await writeFile(join(dir, 'blobs', 'sha256', sha256(configBytes).slice(7)), configBytes);
    const manifest = {schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: {mediaType: MediaTypes.ociConfig, digest: sha256(configBytes), size: configBytes.length}, layers: layout.images[0]!.layers};
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    await writeFile(join(dir, 'blobs', 'sha256', sha256(manifestBytes).slice(7)), manifestBytes);
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({schemaVersion: 2, manifests: [{mediaType: MediaTypes.ociManifest, digest: sha256(manifestBytes), size: manifestBytes.length, annotations: {'org.opencontainers.image.ref.name': 'example.com/bad:1'}}]}),
    );
    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-')), registry: offline});
    await importLayout(target, dir);
    const image = await target.resolve('example.com/bad:1', amd64);
    await expect(imageFiles(target, image)).rejects.toThrow(`layer ${layout.images[0]!.layers[0]!.digest} of image example.com/bad:1 uncompresses to`);
    await target.close();
  });

  it('rejects a tar whose blob does not match its name, naming the digest, and keeps nothing', async () => {
    const file = join(work, 'tampered.tar');
    const good = join(work, 'good.tar');
    await exportImageToFile(source, `${registry.host}/x/multi:v1`, good, {platform: amd64});
    // Flip one byte inside the first layer's gzip stream (layers come first in our tars).
    const bytes = await readFile(good);
    const layer = multi.images[0]!.layers[0]!;
    const at = bytes.indexOf(`blobs/sha256/${layer.digest.slice(7)}`);
    bytes[at + 512 + 20] = bytes[at + 512 + 20]! ^ 0xff;
    await writeFile(file, bytes);
    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-'))});
    const error = await importLayout(target, file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toContain(`blob ${layer.digest} in ${file} failed verification`);
    expect(await blobDigests(target.dir)).toEqual([]);
    expect(await indexRefs(target.dir)).toEqual({});
    expect((await leftovers(target.dir)).ingest).toEqual([]);
    await target.close();
  });

  it('reads from a stream (stdin) and says when an archive is not an OCI layout', async () => {
    const good = join(work, 'stream.tar');
    await exportImageToFile(source, `${registry.host}/x/multi:v1`, good, {platform: amd64});
    const target = new ImageCache({dir: await mkdtemp(join(work, 'target-'))});
    const result = await importLayout(target, '-', {input: createReadStream(good)});
    expect(result.images[0]!.digest).toBe(multi.images[0]!.manifest.digest);
    const dockerSave = join(work, 'docker-save.tar');
    const out = createWriteStream(dockerSave);
    const writer = new LayoutTarWriter(out);
    await writer.file('manifest.json', Buffer.from('[]'));
    await writer.finish();
    await expect(importLayout(target, dockerSave)).rejects.toThrow('is a `docker save` archive, not an OCI layout');
    await target.close();
  });
});
