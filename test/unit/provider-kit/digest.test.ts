// The provider kit's content identity: one read of a file gives its sha256 and how many of
// its blocks are not zero (what an upload of non-zero blocks sends); a file changed after it
// was read is caught; names derived from the digest follow a cloud's rules.
import {createHash, randomBytes} from 'node:crypto';
import {mkdtemp, open, rm, utimes, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {checkUnchanged, contentName, fileDigest} from '../../../src/provider-kit/digest.ts';

const EBS_BLOCK = 512 * 1024;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-kit-digest-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('fileDigest', () => {
  it('hashes the file and counts the non-zero blocks (a partial last one included)', async () => {
    const size = 9 * EBS_BLOCK + 3 * 512;
    const disk = Buffer.alloc(size);
    randomBytes(100).copy(disk, 7 * EBS_BLOCK + 12345);
    randomBytes(512).copy(disk, 9 * EBS_BLOCK + 1024);
    disk[5] = 1;
    const path = join(work, 'a.raw');
    await writeFile(path, disk);
    const seen: number[] = [];
    const digest = await fileDigest(path, {blockSize: EBS_BLOCK, progress: (done) => seen.push(done)});
    expect(digest).toMatchObject({size, sha256: createHash('sha256').update(disk).digest('hex'), nonZeroBlocks: 3});
    expect(seen.at(-1)).toBe(size);
    expect((await fileDigest(path)).nonZeroBlocks).toBeUndefined();
  });

  it('a file changed after it was read is refused', async () => {
    const path = join(work, 'b.raw');
    await writeFile(path, Buffer.alloc(2 * EBS_BLOCK));
    const digest = await fileDigest(path);
    await checkUnchanged(path, digest);
    const file = await open(path, 'r+');
    await file.write(Buffer.from([8]), 0, 1, EBS_BLOCK + 2);
    await file.close();
    await utimes(path, new Date(), new Date(Date.now() + 5000));
    await expect(checkUnchanged(path, digest)).rejects.toThrow(/b\.raw changed while being pushed/);
  });

  it('a missing file is a clear error', async () => {
    await expect(fileDigest(join(work, 'nope.raw'))).rejects.toThrow(/cannot read .*nope\.raw: no such file/);
  });
});

describe('contentName', () => {
  const sha = 'ab'.repeat(32);
  it('stem and digest, spelled and cut as the cloud wants', () => {
    expect(contentName('hello world.raw', sha, {maxLength: 128, illegal: /[^A-Za-z0-9._ -]/g})).toBe('hello world.raw-abababababab');
    expect(contentName('Hello_World', sha, {maxLength: 63, illegal: /[^a-z0-9-]/g, lowercase: true, letterFirst: true})).toBe('hello-world-abababababab');
    expect(contentName('9lives', sha, {maxLength: 20, illegal: /[^a-z0-9-]/g, lowercase: true, letterFirst: true})).toBe('tskit-9-abababababab');
  });
});
