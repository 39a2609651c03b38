// The provider kit's small pieces: tag spelling per cloud and gc by tag, journal-first
// creation, the bounded upload pool, secret redaction, and the provider registry finding
// the provider folders.
import {describe, expect, it} from 'vitest';
import {journalFirst, type ProviderJournal} from '../../../src/provider-kit/journal.ts';
import {redactSecrets} from '../../../src/provider-kit/secrets.ts';
import {checkUserTags, isStray, readTskitTags, tagKeys, tskitTags} from '../../../src/provider-kit/tags.ts';
import {forEachBounded, progressReporter} from '../../../src/provider-kit/upload.ts';
import {providerEntry, providerNames, registerProvider} from '../../../src/run/provider-registry.ts';
import type {Resource} from '../../../src/provider.ts';
import type {TskitEvent} from '../../../src/events.ts';

const SHA = '0123456789abcdef'.repeat(4);

describe('tags', () => {
  const created = new Date('2026-12-05T10:20:30.456Z');

  it('AWS and vSphere: tskit:run-id; Azure: tskit-run-id; values as given', () => {
    expect(tskitTags('aws', {runId: 'tskit-20261205-102030-abc123', digest: SHA, created, keep: true})).toEqual({
      'tskit:run-id': 'tskit-20261205-102030-abc123',
      'tskit:digest': `sha256:${SHA}`,
      'tskit:created': '2026-12-05T10:20:30.456Z',
      'tskit:keep': 'true',
    });
    expect(Object.keys(tskitTags('azure', {runId: 'r', index: 2}))).toEqual(['tskit-run-id', 'tskit-index']);
    expect(tagKeys('vsphere').runId).toBe('tskit:run-id');
  });

  it('GCE labels: lowercase keys and values of at most 63 characters, the digest cut to 56 hex digits, the time in seconds', () => {
    const labels = tskitTags('gcp', {runId: 'TSKIT-20261205-102030-ABC123', digest: SHA, created, source: 'Hello World.img.tar.gz'});
    expect(labels).toEqual({
      'tskit-run-id': 'tskit-20261205-102030-abc123',
      'tskit-digest': `sha256-${SHA.slice(0, 56)}`,
      'tskit-created': String(Math.floor(created.getTime() / 1000)),
      'tskit-source': 'hello-world-img-tar-gz',
    });
    for (const [key, value] of Object.entries(labels)) {
      expect(key).toMatch(/^[a-z][a-z0-9_-]{0,62}$/);
      expect(value).toMatch(/^[a-z0-9_-]{0,63}$/);
    }
    expect(readTskitTags('gcp', labels)).toMatchObject({runId: 'tskit-20261205-102030-abc123', digest: SHA.slice(0, 56), created: new Date(Math.floor(created.getTime() / 1000) * 1000), keep: false});
  });

  it('reads back AWS tag lists, and gc takes only what a run left that is not kept and old enough', () => {
    const tags = readTskitTags('aws', [{Key: 'tskit:run-id', Value: 'r1'}, {Key: 'tskit:created', Value: '2026-01-01T00:00:00Z'}, {Key: 'Name', Value: 'x'}]);
    expect(tags).toMatchObject({runId: 'r1', keep: false});
    expect(isStray(tags, {})).toBe(true);
    expect(isStray(tags, {runId: 'r2'})).toBe(false);
    expect(isStray(tags, {olderThan: new Date('2025-12-31T00:00:00Z')})).toBe(false);
    expect(isStray(tags, {olderThan: new Date('2026-01-02T00:00:00Z')})).toBe(true);
    expect(isStray({...tags, keep: true}, {})).toBe(false);
    expect(isStray(readTskitTags('aws', [{Key: 'Name', Value: 'not ours'}]), {})).toBe(false);
  });

  it('a user tag a cloud would refuse is refused in one line', () => {
    expect(() => checkUserTags('gcp', {Team: 'a'})).toThrow(/--tag Team=a: a GCE label key starts with a lowercase letter/);
    expect(() => checkUserTags('gcp', {team: 'A B'})).toThrow(/a GCE label value holds only lowercase letters/);
    expect(() => checkUserTags('azure', {'a/b': 'c'})).toThrow(/azure tag names cannot contain/);
    expect(() => checkUserTags('aws', {'aws:x': 'y'})).toThrow(/the aws: prefix is reserved/);
    expect(() => checkUserTags('aws', {team: 'x'.repeat(300)})).toThrow(/at most 256 characters/);
    checkUserTags('gcp', {team: 'infra-2'});
  });
});

describe('journalFirst', () => {
  function memoryJournal() {
    const entries: string[] = [];
    const journal: ProviderJournal = {
      async record(r: Resource) {
        entries.push(`+${r.kind}:${r.id}`);
      },
      async forget(r: Resource) {
        entries.push(`-${r.kind}:${r.id}`);
      },
    };
    return {entries, journal};
  }

  it('records the token before the call, then the created resource, then forgets the token', async () => {
    const {entries, journal} = memoryJournal();
    const made = await journalFirst({
      journal,
      before: {provider: 'p', kind: 'disk-token', id: 'tok'},
      create: async () => {
        entries.push('create');
        return {id: 'disk-1'};
      },
      created: (r) => ({provider: 'p', kind: 'disk', id: r.id}),
    });
    expect(made).toEqual({id: 'disk-1'});
    expect(entries).toEqual(['+disk-token:tok', 'create', '+disk:disk-1', '-disk-token:tok']);
  });

  it('a lost answer keeps the token for gc; a refusal the cloud answered forgets it', async () => {
    const lost = memoryJournal();
    await expect(journalFirst({journal: lost.journal, before: {provider: 'p', kind: 'vm-token', id: 't'}, create: () => Promise.reject(Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'}))})).rejects.toThrow('socket hang up');
    expect(lost.entries).toEqual(['+vm-token:t']);
    const refused = memoryJournal();
    await expect(journalFirst({journal: refused.journal, before: {provider: 'p', kind: 'vm-token', id: 't'}, create: () => Promise.reject(Object.assign(new Error('quota'), {status: 403}))})).rejects.toThrow('quota');
    expect(refused.entries).toEqual(['+vm-token:t', '-vm-token:t']);
  });
});

describe('forEachBounded', () => {
  it('never more than `concurrency` in flight, pulls the source lazily, and every item is done', async () => {
    let inFlight = 0;
    let most = 0;
    let pulled = 0;
    const done: number[] = [];
    const source = async function* () {
      for (let i = 0; i < 40; i++) {
        pulled++;
        expect(pulled - done.length).toBeLessThanOrEqual(4);
        yield i;
      }
    };
    await forEachBounded(source(), {concurrency: 3}, async (i) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
      inFlight--;
      done.push(i);
    });
    expect(most).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({length: 40}, (_, i) => i));
  });

  it('the first failure stops new work, the rest settle, and it is thrown with its item reported', async () => {
    const started: number[] = [];
    let failedItem: number | undefined;
    await expect(forEachBounded(Array.from({length: 50}, (_, i) => i), {concurrency: 2, onFailure: (i) => (failedItem = i)}, async (i) => {
      started.push(i);
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (i === 5) throw new Error('block 5 refused');
    })).rejects.toThrow('block 5 refused');
    expect(failedItem).toBe(5);
    expect(started.length).toBeLessThan(10);
  });

  it('progress events at most once per interval, the last one forced', () => {
    const events: TskitEvent[] = [];
    const report = progressReporter((e) => events.push(e), {task: 'upload x', total: 100, intervalMs: 60_000});
    report(10);
    report(20);
    report(100, true);
    expect(events).toEqual([{type: 'progress', task: 'upload x', done: 10, total: 100, unit: 'bytes'}, {type: 'progress', task: 'upload x', done: 100, total: 100, unit: 'bytes'}]);
  });
});

describe('redactSecrets', () => {
  it('masks bearer tokens, JWTs, SAS and GCS signatures, JSON token fields, PEM keys, session cookies, and named variables', () => {
    const text = [
      'Authorization: Bearer ya29.a0AfH6SMBx-secret-token',
      'https://acct.blob.core.windows.net/c/b?sv=2023-11-03&sig=abc%2Bdef%3D&se=2026',
      'https://storage.googleapis.com/b/o?X-Goog-Signature=0123abcd&X-Goog-Credential=sa%40p',
      '{"access_token":"tok123","expires_in":3599}',
      '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----',
      'cookie vmware_soap_session=52a1b2c3; path=/',
      'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
      'client secret is hunter2-value',
    ].join(' | ');
    const out = redactSecrets(text, {env: {MY_SECRET: 'hunter2-value'}, envNames: ['MY_SECRET']});
    for (const secret of ['ya29', 'abc%2Bdef', '0123abcd', 'tok123', 'MIIEv', '52a1b2c3', 'eyJhbGci', 'hunter2']) expect(out).not.toContain(secret);
    expect(out).toContain('Bearer ***');
    expect(out).toContain('sig=***');
    expect(out).toContain('"expires_in":3599');
  });
});

describe('provider registry', () => {
  it('finds every folder under providers/ that declares an entry, with its formats', () => {
    expect(providerNames()).toEqual(expect.arrayContaining(['aws', 'qemu']));
    expect(providerEntry('aws').formats).toEqual(['aws', 'raw-bios', 'raw-efi', 'vmdk']);
    expect(providerEntry('qemu').formats).toContain('kernel+initrd');
    expect(() => providerEntry('nope')).toThrow(/unknown provider "nope" \(known: .*aws.*qemu/);
  });

  it('a plugin joins through registerProvider', async () => {
    registerProvider({name: 'plugin-test', formats: ['raw-efi'], load: async () => ({name: 'plugin-test'}) as never, manifestOptions: {type: 'object', props: {}}, runOptions: async () => ({}), imageId: (t) => t});
    expect(providerNames()).toContain('plugin-test');
    expect(() => registerProvider({...providerEntry('plugin-test'), name: 'Bad Name'})).toThrow(/lowercase letters, digits and -/);
  });
});
