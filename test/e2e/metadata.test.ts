// `tskit metadata create`: the ISO LinuxKit's metadata package reads (one file, /config),
// read back with isoinfo (cdrkit), reproducible, and laid out as LinuxKit v1.8.2's own
// `linuxkit metadata create` writes it: same size and sectors, the same directory records and
// path tables but for their dates and flag bits, the same data. (LinuxKit's primary volume
// descriptor pads each text field to 32 bytes, which moves its dates: tskit's has the ISO 9660
// widths, so that one sector is compared through isoinfo instead.)
import {execFile} from 'node:child_process';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ensureBuilt, tskit} from '../support/cli.ts';
import {findLinuxkit} from '../support/linuxkit.ts';

const run = promisify(execFile);
const linuxkit = await findLinuxkit();
const SECTOR = 2048;
let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-metadata-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

const isoinfo = async (iso: string, ...args: string[]) => (await run('isoinfo', ['-i', iso, ...args], {encoding: 'buffer', maxBuffer: 1 << 24})).stdout;
const listing = async (iso: string) =>
  (await isoinfo(iso, '-l'))
    .toString()
    .split('\n')
    .filter((l) => l.includes('['))
    // dates, and the directory flag byte LinuxKit sets to 3 (hidden directory) where tskit writes 2
    .map((l) => l.replace(/\s+[A-Z][a-z]{2}\s+\d+\s+\d{4}\s+/, ' DATE ').replace(/\[\s*(\d+) \d\d\]/, '[$1]'));

describe('tskit metadata create', () => {
  const data = '{"hostname": {"perm": "0644", "content": "web-1"}, "blob": "' + 'x'.repeat(5000) + '"}';

  it('writes an ISO whose /config holds the metadata, the same bytes each time', async () => {
    const iso = join(work, 'a.iso');
    const made = await tskit(['metadata', 'create', iso, data]);
    expect(made.code, made.stderr).toBe(0);
    expect((await isoinfo(iso, '-x', '/config')).toString()).toBe(data);
    expect((await isoinfo(iso, '-d')).toString()).toMatch(/Volume id: config/);
    const again = join(work, 'b.iso');
    await writeFile(join(work, 'data.json'), data);
    expect((await tskit(['metadata', 'create', again, '--data-file', join(work, 'data.json')])).code).toBe(0);
    expect((await readFile(again)).equals(await readFile(iso))).toBe(true);
    const later = join(work, 'c.iso');
    expect((await tskit(['metadata', 'create', later, data], {env: {SOURCE_DATE_EPOCH: '1700000000'}})).code).toBe(0);
    expect((await readFile(later)).equals(await readFile(iso))).toBe(false);
    expect((await isoinfo(later, '-l')).toString()).toMatch(/Nov 14 2023/);
  });

  it('refuses metadata given twice or not at all, in one line, writing nothing', async () => {
    const iso = join(work, 'refused.iso');
    for (const args of [[iso, 'x', '--data-file', join(work, 'data.json')], [iso]]) {
      const r = await tskit(['metadata', 'create', ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const missing = await tskit(['metadata', 'create', iso, '--data-file', join(work, 'nope.json')]);
    expect(missing.stderr).toMatch(/nope\.json: cannot read the metadata: ENOENT/);
    await expect(readFile(iso)).rejects.toThrow();
  });

  it.skipIf(!linuxkit.path)('is laid out as linuxkit metadata create lays it out', async () => {
    for (const [name, text] of [['small', '{}'], ['large', data], ['empty-ish', ' ']] as const) {
      const ours = join(work, `${name}-tskit.iso`);
      const theirs = join(work, `${name}-linuxkit.iso`);
      expect((await tskit(['metadata', 'create', ours, text])).code).toBe(0);
      await run(linuxkit.path!, ['metadata', 'create', theirs, text]);
      const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
      expect(a.length).toBe(b.length);
      expect(await listing(ours)).toEqual(await listing(theirs));
      expect((await isoinfo(ours, '-x', '/config')).equals(await isoinfo(theirs, '-x', '/config'))).toBe(true);
      const sector = (buf: Buffer, n: number) => Buffer.from(buf.subarray(n * SECTOR, (n + 1) * SECTOR));
      for (let n = 0; n * SECTOR < a.length; n++) {
        if (n === 16) continue; // the volume descriptor: see above
        const [x, y] = [sector(a, n), sector(b, n)];
        if (n === 18 || n === 19) [x, y].forEach((s) => (s[9] = 0)); // the path table's padding byte (LinuxKit: 1)
        if (n === 20) {
          // three directory records: their dates (7 bytes at 18) and flags (at 25); LinuxKit's writer
          // also records an odd length (39) for the 40-byte file record (it pads after writing the length)
          for (const s of [x, y]) {
            for (let at = 0; s[at]! > 0; at += s[at]! + (s[at]! % 2)) {
              s.fill(0, at + 18, at + 26);
              s[at] = s[at]! + (s[at]! % 2);
            }
          }
        }
        expect(x.equals(y), `sector ${n}`).toBe(true);
      }
      const pvd = (await isoinfo(ours, '-d')).toString().split('\n').filter((l) => /Volume id|Volume size|Logical block size/.test(l));
      const lkPvd = (await isoinfo(theirs, '-d')).toString().split('\n').filter((l) => /Volume id|Volume size|Logical block size/.test(l));
      expect(pvd).toEqual(lkPvd);
    }
  });
});
