// The AWS provider's file journal: what was recorded and not forgotten survives the process
// (and a torn last line), and a closed journal with nothing open leaves no file.
import {appendFile, mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FileJournal, readJournals} from '../../../providers/aws/journal.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tskit-aws-journal-'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('FileJournal', () => {
  it('open entries are read back; forgotten ones are not; torn lines are skipped', async () => {
    const dir = join(work, 'j1');
    const journal = new FileJournal(join(dir, 'a.ndjson'));
    await journal.record({provider: 'aws', kind: 'client-token', id: 'run-1', runId: 'run-1', region: 'eu-west-1'});
    await journal.record({provider: 'aws', kind: 'instance', id: 'i-1', runId: 'run-1', region: 'eu-west-1'});
    await journal.record({provider: 'aws', kind: 'instance', id: 'i-2', runId: 'run-1', region: 'eu-west-1'});
    await journal.forget({provider: 'aws', kind: 'client-token', id: 'run-1', region: 'eu-west-1'});
    await journal.forget({provider: 'aws', kind: 'instance', id: 'i-2', region: 'eu-west-1'});
    await appendFile(journal.path, '{"op":"+","kind":"inst');
    await journal.close();
    const open = await readJournals(dir);
    expect(open.map((o) => o.resource)).toEqual([{provider: 'aws', kind: 'instance', id: 'i-1', runId: 'run-1', region: 'eu-west-1'}]);
  });

  it('a journal with everything forgotten is removed on close', async () => {
    const dir = join(work, 'j2');
    const journal = new FileJournal(join(dir, 'b.ndjson'));
    await journal.record({provider: 'aws', kind: 'snapshot', id: 'snap-1'});
    await journal.forget({provider: 'aws', kind: 'snapshot', id: 'snap-1'});
    await journal.close();
    expect(await readdir(dir)).toEqual([]);
  });
});
