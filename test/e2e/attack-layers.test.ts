// Attacks crafted layers mount on `tskit build` (test/support/crafted-layers.ts, served by the
// hostile registry): a path thousands of components deep, a 1.5 GiB PAX header and a 600 MiB
// GNU long name that gzip to a megabyte or so, and a `files:` entry under a symlink an image
// made. Each run is bounded: the wall time and peak RSS asserted are limits a regression
// (cubic time, a record held in memory) cannot meet by luck.
import {execFileSync} from 'node:child_process';
import {createReadStream} from 'node:fs';
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readTar} from '../../src/build/tar/reader.ts';
import {runBounded} from '../support/bounded-run.ts';
import {ensureBuilt} from '../support/cli.ts';
import {END, hugeRecordLayer, member, paxFile, serveImage} from '../support/crafted-layers.ts';
import {startHostileRegistry, type HostileRegistry} from '../support/hostile-registry.ts';

let work: string;
let registry: HostileRegistry;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-attack-layers-'));
  registry = await startHostileRegistry();
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

async function buildImage(name: string, layers: Buffer[], extraYaml = '', format = 'tar') {
  const image = serveImage(registry, `${name}/x`, 'v1', layers.map((blob) => ({blob})));
  const config = join(work, `${name}.yml`);
  await writeFile(config, `onboot:\n  - name: app\n    image: ${image.ref}\n${extraYaml}`);
  const out = join(work, `out-${name}`);
  const ran = await runBounded(['build', '--format', format, '--dir', out, config], {env: {TSKIT_CACHE: join(work, 'cache')}, killAfterMs: 120_000});
  return {ran, out, image};
}

/** Entries of a tar that sit under, or are a directory over, a symlink entry before them. */
async function entriesUnderSymlinks(path: string): Promise<string[]> {
  const kinds = new Map<string, string>();
  const bad: string[] = [];
  for await (const entry of readTar(createReadStream(path), path)) {
    const name = entry.path.replace(/\/$/, '');
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) if (kinds.get(parts.slice(0, i).join('/')) === 'symlink') bad.push(name);
    if (entry.type === 'dir' && kinds.get(name) === 'symlink') bad.push(name);
    kinds.set(name, entry.type);
    for await (const _ of entry.content ?? []) void _;
  }
  return bad;
}

/** The error a run printed: exactly one line, no stack. */
const errorLines = (stderr: string) => {
  expect(stderr).not.toMatch(/^\s+at /m);
  return stderr.split('\n').filter((line) => line.startsWith('tskit: error:'));
};

const tarNames = (path: string) => execFileSync('tar', ['-tf', path], {encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore']}).split('\n').filter(Boolean);

describe('a path thousands of components deep', () => {
  it('builds one just under PATH_MAX in linear time, and refuses a longer one at once, naming the layer', async () => {
    // 2047 components: 4095 bytes, the longest path Linux takes, under four top directories.
    // Cubic time made one such path ~9 s (and 4000 components 33 s): four, ~37 s. Linear
    // is a second or two, so a bound of 15 s holds on a loaded machine and fails the old way.
    const chains = ['a', 'b', 'c', 'd'].map((top) => paxFile(`${top}/${'a/'.repeat(2046)}f`, top));
    const deep = await buildImage('deep-ok', [Buffer.concat([...chains, END])]);
    expect(deep.ran.code, deep.ran.stderr).toBe(0);
    expect(deep.ran.ms).toBeLessThan(15_000);
    expect(deep.ran.rssMiB).toBeLessThan(400);
    const names = tarNames(join(deep.out, 'deep-ok.tar'));
    for (const top of ['a', 'b', 'c', 'd']) expect(names).toContain(`containers/onboot/000-app/lower/${top}/${'a/'.repeat(2046)}f`);

    const tooDeep = await buildImage('deep-8000', [Buffer.concat([paxFile(`${'a/'.repeat(8000)}f`, 'x'), END])]);
    expect(tooDeep.ran.code).toBe(1);
    expect(tooDeep.ran.stderr).toMatch(new RegExp(`layer 1/1 \\(${tooDeep.image.layerDigest}\\) of ${tooDeep.image.ref.replaceAll('.', '\\.')}: entry "a/a/a.*is 16001 bytes long, more than PATH_MAX \\(4096\\)`));
    expect(errorLines(tooDeep.ran.stderr)).toHaveLength(1);
    expect(tooDeep.ran.ms).toBeLessThan(5_000);
    expect(await readdir(tooDeep.out).catch(() => [])).toEqual([]);
  });
});

describe('special tar records larger than any real one', () => {
  it('refuses a 1.5 GiB PAX header in bounded memory, naming the layer and the byte offset', async () => {
    const layer = hugeRecordLayer('x', 1536 * 1024 * 1024);
    expect(layer.length).toBeLessThan(4 * 1024 * 1024);
    const {ran, out, image} = await buildImage('pax-bomb', [layer]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`layer 1/1 (${image.layerDigest}) of ${image.ref}: the PAX header at byte 0 is 1610612736 bytes, more than the 1048576 tskit reads`);
    expect(errorLines(ran.stderr)).toHaveLength(1);
    // the record is never held: 6.4 GB once
    expect(ran.rssMiB).toBeLessThan(400);
    expect(ran.ms).toBeLessThan(30_000);
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  it('refuses a 600 MiB GNU long name the same way', async () => {
    const {ran, image} = await buildImage('gnu-bomb', [hugeRecordLayer('L', 600 * 1024 * 1024)]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`layer 1/1 (${image.layerDigest}) of ${image.ref}: the GNU long name at byte 0 is 629145600 bytes, more than the 1048576 tskit reads`);
    expect(errorLines(ran.stderr)).toHaveLength(1);
    expect(ran.rssMiB).toBeLessThan(400);
    expect(ran.ms).toBeLessThan(30_000);
  });
});

describe('a files: entry under a symlink an image made', () => {
  it('is refused, and no output ever has an entry under or over a symlink entry', async () => {
    // an onboot image whose root has `escape -> /tmp`; files: are written at the image root,
    // so an init image makes the symlink where files: land
    const layer = Buffer.concat([member('escape', '2', Buffer.alloc(0), {linkname: '/tmp', mode: 0o777}), member('etc/', '5', Buffer.alloc(0), {mode: 0o755}), END]);
    const image = serveImage(registry, 'symlinker/x', 'v1', [{blob: layer}]);
    const config = join(work, 'under-symlink.yml');
    await writeFile(config, `init:\n  - ${image.ref}\nfiles:\n  - path: escape/owned\n    contents: "written outside the extraction root"\n`);
    const out = join(work, 'out-under-symlink');
    const ran = await runBounded(['build', '--format', 'tar', '--dir', out, config], {env: {TSKIT_CACHE: join(work, 'cache')}});
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('a directory /escape (from files[0]) would replace the symlink /escape (-> /tmp) an image put there');
    expect(ran.stderr).toContain('files[0]');
    expect(errorLines(ran.stderr)).toHaveLength(1);
    expect(await readdir(out).catch(() => [])).toEqual([]);

    // a files: entry beside it is fine, and the symlink stays a symlink
    await writeFile(config, `init:\n  - ${image.ref}\nfiles:\n  - path: etc/owned\n    contents: "inside"\n`);
    const fine = await runBounded(['build', '--format', 'tar', '--dir', out, config], {env: {TSKIT_CACHE: join(work, 'cache')}});
    expect(fine.code, fine.stderr).toBe(0);
    const listing = execFileSync('tar', ['-tvf', join(out, 'under-symlink.tar')], {encoding: 'utf8'});
    expect(listing).toMatch(/escape -> \/tmp/);
    expect(await entriesUnderSymlinks(join(out, 'under-symlink.tar'))).toEqual([]);
    const x = join(work, 'x');
    await mkdir(x);
    execFileSync('tar', ['-xf', join(out, 'under-symlink.tar'), '-C', x], {stdio: 'ignore'});
  });
});
