// A disk into an EBS snapshot through the EBS direct APIs: StartSnapshot, PutSnapshotBlock
// for each non-zero 512 KiB block (with its SHA-256, many in parallel), CompleteSnapshot with
// the block count and the linear checksum, then a check that the snapshot holds exactly the
// blocks we wrote. What coldsnap learned is built in: a new snapshot can answer "not found"
// for a while (we wait for the first block to land before going wide); every request has
// connect/read timeouts and one retry layer (sdk.ts, retry.ts); an interrupted upload is
// continued from the blocks the snapshot already acknowledged, or started over cleanly when
// the snapshot is no longer writable.
import {randomUUID, createHash} from 'node:crypto';
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import {sleep} from '../../src/run/signals.ts';
import {awsError, errorCode, isNotFound, named} from './errors.ts';
import {adoptOrRecord, type AwsJournal} from './journal.ts';
import type {DiskImage} from '../../src/formats/disk.ts';
import {diskBlocks, type DiskBlock as EbsBlock} from '../../src/provider-kit/disk-blocks.ts';
import {forEachBounded} from '../../src/provider-kit/upload.ts';
import type {AwsClients} from './sdk.ts';
import type {UploadStateStore} from './upload-state.ts';

const GIB = 1024 ** 3;
/** The EBS direct APIs' block size (moto reports 512, AWS 524288; AWS's is the contract). */
export const EBS_BLOCK = 512 * 1024;

export interface EbsUploadOptions {
  clients: AwsClients;
  /** The disk: any DiskImage (a scanned raw file, a VMDK, ...); read once, in order. */
  disk: DiskImage;
  /** The content digest (sha256 hex) that names this upload for resumption. */
  digest: string;
  /** For messages: the file it came from. */
  label: string;
  /** Non-zero blocks, when known beforehand (progress totals). */
  expectedBlocks?: number;
  description: string;
  tags: Record<string, string>;
  journal: AwsJournal;
  state: UploadStateStore;
  emit: Emit;
  signal?: AbortSignal;
  /** Blocks in flight at once. */
  concurrency?: number;
  /** How long a fresh snapshot may stay unwritable ("not found") before we give up. */
  writableWaitMs?: number;
  /** Minutes AWS keeps an unfinished snapshot writable before it fails it (StartSnapshot Timeout). */
  snapshotTimeoutMinutes?: number;
}

export interface EbsUploadResult {
  snapshotId: string;
  /** Block payload bytes sent in this run (retries not counted). */
  bytesSent: number;
  blocksSent: number;
  /** Blocks the snapshot already had from an interrupted run. */
  blocksResumed: number;
}

class NotWritable extends Error {}

export async function uploadToEbsSnapshot(options: EbsUploadOptions): Promise<EbsUploadResult> {
  const {clients, state, emit} = options;
  await clients.load('ebs');
  const key = `${clients.region}-${options.digest}`;
  const saved = await state.load(key);
  if (saved) {
    emit({type: 'log', level: 'info', message: `continuing the upload into ${saved.snapshotId} (${saved.done.length}${options.expectedBlocks ? ` of ${options.expectedBlocks}` : ''} blocks already there)`});
    // this push owns the snapshot now: `tskit gc` must not remove it from under it
    await adoptOrRecord(options.journal, {provider: 'aws', kind: 'snapshot', id: saved.snapshotId, region: clients.region});
    try {
      return await writeSnapshot(options, key, saved.snapshotId, new Set(saved.done), saved.startedAt, 5_000);
    } catch (error) {
      if (!(error instanceof NotWritable)) throw error;
      emit({type: 'log', level: 'info', message: `${saved.snapshotId} is no longer writable (${error.message}); starting over`});
      await deleteSnapshotQuietly(options, saved.snapshotId);
      await options.journal.forget({provider: 'aws', kind: 'snapshot', id: saved.snapshotId, region: clients.region});
      await state.remove(key);
    }
  }
  const snapshotId = await startSnapshot(options);
  const startedAt = new Date().toISOString();
  await state.save(key, {snapshotId, startedAt, done: []});
  try {
    return await writeSnapshot(options, key, snapshotId, new Set(), startedAt, options.writableWaitMs ?? 150_000);
  } catch (error) {
    if (error instanceof NotWritable) throw new TskitError(`EBS snapshot ${snapshotId} did not become writable: ${error.message}`);
    throw error;
  }
}

async function startSnapshot(options: EbsUploadOptions): Promise<string> {
  const {clients, disk, journal} = options;
  const {ebs, sdk} = clients;
  const clientToken = randomUUID();
  // Recorded before the call by its token: the answer can be lost while the snapshot exists.
  await journal.record({provider: 'aws', kind: 'snapshot-token', id: clientToken, region: clients.region});
  const started = await named(
    'StartSnapshot',
    ebs.send(
      new sdk.ebs.StartSnapshotCommand({
        VolumeSize: Math.max(1, Math.ceil(disk.size / GIB)),
        Description: options.description,
        Tags: Object.entries({...options.tags, 'tskit:client-token': clientToken}).map(([Key, Value]) => ({Key, Value})),
        Timeout: options.snapshotTimeoutMinutes ?? 60,
        ClientToken: clientToken,
      }),
      {abortSignal: options.signal},
    ),
  );
  const snapshotId = started.SnapshotId;
  if (!snapshotId) throw new TskitError('AWS StartSnapshot answered without a snapshot id');
  await journal.record({provider: 'aws', kind: 'snapshot', id: snapshotId, region: clients.region});
  await journal.forget({provider: 'aws', kind: 'snapshot-token', id: clientToken, region: clients.region});
  options.emit({type: 'resource.created', provider: 'aws', kind: 'snapshot', id: snapshotId});
  return snapshotId;
}

async function writeSnapshot(options: EbsUploadOptions, key: string, snapshotId: string, done: Set<number>, startedAt: string, writableWaitMs: number): Promise<EbsUploadResult> {
  const {clients, disk, emit, signal} = options;
  const total = options.expectedBlocks === undefined ? undefined : options.expectedBlocks * EBS_BLOCK;
  const checksums = new Map<number, Buffer>();
  let bytesSent = 0;
  let acknowledged = 0;
  let lastProgress = 0;
  const progress = (force = false): void => {
    const now = Date.now();
    if (!force && now - lastProgress < 250) return;
    lastProgress = now;
    emit({type: 'progress', task: `upload ${snapshotId}`, done: done.size * EBS_BLOCK, ...(total !== undefined ? {total} : {}), unit: 'bytes'});
  };
  let lastSave = Date.now();
  const persist = async (force = false): Promise<void> => {
    if (!force && Date.now() - lastSave < 2000) return;
    lastSave = Date.now();
    await options.state.save(key, {snapshotId, startedAt, done: [...done].sort((a, b) => a - b)});
  };

  const send = async (block: EbsBlock, checksum: string): Promise<void> => {
    const answer = await clients.ebs.send(
      new clients.sdk.ebs.PutSnapshotBlockCommand({
        SnapshotId: snapshotId,
        BlockIndex: block.index,
        BlockData: block.data,
        DataLength: EBS_BLOCK,
        Checksum: checksum,
        ChecksumAlgorithm: 'SHA256',
        ...(options.expectedBlocks ? {Progress: Math.min(100, Math.floor(((done.size + 1) * 100) / options.expectedBlocks))} : {}),
      }),
      {abortSignal: signal},
    );
    if (answer.Checksum && answer.Checksum !== checksum) throw new TskitError(`EBS acknowledged block ${block.index} of ${snapshotId} with checksum ${answer.Checksum}, not ${checksum}: the data was damaged on the way; run the push again`);
  };

  // The first block waits out the time a new snapshot is "not found"; the rest wait for it.
  let writable: Promise<void> | undefined;
  const put = async (block: EbsBlock, checksum: string): Promise<void> => {
    if (!writable) {
      writable = (async () => {
        const deadline = Date.now() + writableWaitMs;
        for (let attempt = 1; ; attempt++) {
          try {
            return await send(block, checksum);
          } catch (error) {
            if (signal?.aborted || error instanceof TskitError) throw error;
            const code = errorCode(error);
            if ((code === 'ResourceNotFoundException' || code === 'ConflictException') && Date.now() < deadline) {
              await sleep(Math.min(10_000, 500 * attempt), signal);
              continue;
            }
            throw error;
          }
        }
      })();
      await writable;
    } else {
      await writable;
      await send(block, checksum);
    }
    bytesSent += EBS_BLOCK;
    done.add(block.index);
    acknowledged++;
    progress();
    await persist();
  };

  let failure: unknown;
  let failedBlock: number | undefined;
  let failed = false;
  try {
    const pending = async function* (): AsyncGenerator<{block: EbsBlock; sha: Buffer}> {
      for await (const block of diskBlocks(disk, EBS_BLOCK)) {
        const sha = createHash('sha256').update(block.data).digest();
        checksums.set(block.index, sha);
        if (!done.has(block.index)) yield {block, sha};
      }
    };
    await forEachBounded(pending(), {concurrency: options.concurrency ?? 16, ...(signal ? {signal} : {}), onFailure: ({block}) => (failedBlock = block.index)}, ({block, sha}) => put(block, sha.toString('base64')));
  } catch (error) {
    failed = true;
    failure = error;
  }
  await persist(true).catch(() => {});
  if (failed) {
    if (failure instanceof TskitError || signal?.aborted) throw failure;
    if (isNotWritable(failure)) throw new NotWritable(`${errorCode(failure)}: ${(failure as Error).message}`);
    throw awsError(failure, failedBlock === undefined ? 'PutSnapshotBlock' : `PutSnapshotBlock (block ${failedBlock})`);
  }
  progress(true);

  // Verify before completing: every non-zero block acknowledged (now or by the interrupted
  // run), and AWS is told the count and the linear checksum (SHA-256 over the blocks'
  // SHA-256s in index order) to check too.
  const indexes = [...checksums.keys()].sort((a, b) => a - b);
  const missing = indexes.filter((i) => !done.has(i));
  if (missing.length > 0) throw new TskitError(`${missing.length} blocks of ${options.label} were not acknowledged by ${snapshotId} (first: ${missing[0]}); run the push again to continue`);
  const linear = createHash('sha256');
  for (const index of indexes) linear.update(checksums.get(index)!);
  try {
    await clients.ebs.send(
      new clients.sdk.ebs.CompleteSnapshotCommand({
        SnapshotId: snapshotId,
        ChangedBlocksCount: indexes.length,
        Checksum: linear.digest('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
      {abortSignal: signal},
    );
  } catch (error) {
    if (isNotWritable(error)) throw new NotWritable(`${errorCode(error)}: ${(error as Error).message}`);
    throw awsError(error, 'CompleteSnapshot');
  }
  await waitSnapshotCompleted(clients, snapshotId, signal);
  await verifyBlocks(clients, snapshotId, new Set(indexes), signal);
  await options.state.remove(key);
  return {snapshotId, bytesSent, blocksSent: acknowledged, blocksResumed: indexes.length - acknowledged};
}

/** Answers that mean this snapshot cannot take blocks any more (timed out, failed, completed, gone). */
function isNotWritable(error: unknown): boolean {
  const code = errorCode(error);
  const reason = (error as {Reason?: string}).Reason ?? '';
  return code === 'ResourceNotFoundException' || (code === 'ValidationException' && /SNAPSHOT|WRITE_REQUEST_TIMEOUT/.test(reason)) || (code === 'ValidationException' && /snapshot/i.test((error as Error).message ?? ''));
}

/** DescribeSnapshots until `completed` (AWS finishes an EBS-direct snapshot asynchronously). */
export async function waitSnapshotCompleted(clients: AwsClients, snapshotId: string, signal?: AbortSignal, timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const answer = await named('DescribeSnapshots', clients.ec2.send(new clients.sdk.ec2.DescribeSnapshotsCommand({SnapshotIds: [snapshotId]}), {abortSignal: signal}));
    const snapshot = answer.Snapshots?.[0];
    if (snapshot?.State === 'completed') return;
    if (snapshot?.State === 'error') throw new TskitError(`EBS snapshot ${snapshotId} failed: ${snapshot.StateMessage ?? 'state error'}`);
    if (Date.now() > deadline) throw new TskitError(`EBS snapshot ${snapshotId} is still ${snapshot?.State ?? 'missing'} after ${Math.round(timeoutMs / 60_000)} minutes`);
    await sleep(Math.min(10_000, 1000 * (attempt + 1)), signal);
    signal?.throwIfAborted();
  }
}

/** The snapshot's block list must be exactly our non-zero blocks. */
async function verifyBlocks(clients: AwsClients, snapshotId: string, expected: Set<number>, signal?: AbortSignal): Promise<void> {
  const stored = new Set<number>();
  let token: string | undefined;
  do {
    const page = await named('ListSnapshotBlocks', clients.ebs.send(new clients.sdk.ebs.ListSnapshotBlocksCommand({SnapshotId: snapshotId, NextToken: token, MaxResults: 10_000}), {abortSignal: signal}));
    for (const block of page.Blocks ?? []) stored.add(Number(block.BlockIndex));
    token = page.NextToken;
  } while (token);
  const extra = [...stored].filter((i) => !expected.has(i));
  const absent = [...expected].filter((i) => !stored.has(i));
  if (extra.length || absent.length) throw new TskitError(`EBS snapshot ${snapshotId} does not hold the image's blocks (${absent.length} missing, ${extra.length} unexpected); it was not used`);
}

async function deleteSnapshotQuietly(options: EbsUploadOptions, snapshotId: string): Promise<void> {
  const {clients} = options;
  try {
    await clients.ec2.send(new clients.sdk.ec2.DeleteSnapshotCommand({SnapshotId: snapshotId}));
  } catch (error) {
    if (!isNotFound(error)) options.emit({type: 'log', level: 'warn', message: `could not delete the abandoned snapshot ${snapshotId}: ${awsError(error, 'DeleteSnapshot').message}`});
    return;
  }
  await options.journal.forget({provider: 'aws', kind: 'snapshot', id: snapshotId, region: clients.region});
}
