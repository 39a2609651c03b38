// An S3 object (raw or VMDK) into an EBS snapshot with VM Import's ImportSnapshot, polled
// until it completes. A task that fails ends as `deleted` (or `deleting`) with a
// StatusMessage such as "ClientError: Disk validation failed"; that message is the error.
// VM Import needs the `vmimport` service role (or --role-name) in the account.
import {randomUUID} from 'node:crypto';
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import {sleep} from '../../src/run/signals.ts';
import {named} from './errors.ts';
import type {AwsJournal} from './journal.ts';
import type {AwsClients} from './sdk.ts';

export interface ImportOptions {
  clients: AwsClients;
  bucket: string;
  key: string;
  format: 'RAW' | 'VMDK';
  description: string;
  tags: Record<string, string>;
  roleName?: string;
  journal: AwsJournal;
  emit: Emit;
  signal?: AbortSignal;
  /** First poll interval (default 1 s); it grows to 15 s. */
  pollMs?: number;
  timeoutMs?: number;
}

export async function importSnapshot(options: ImportOptions): Promise<string> {
  const {clients, emit, signal, journal} = options;
  const {ec2, sdk} = clients;
  const tags = Object.entries(options.tags).map(([Key, Value]) => ({Key, Value}));
  // A lost answer retried by the SDK must not start a second task.
  const clientToken = randomUUID();
  const started = await named(
    'ImportSnapshot',
    ec2.send(
      new sdk.ec2.ImportSnapshotCommand({
        Description: options.description,
        DiskContainer: {Description: options.description, Format: options.format, UserBucket: {S3Bucket: options.bucket, S3Key: options.key}},
        ClientToken: clientToken,
        ...(options.roleName ? {RoleName: options.roleName} : {}),
        TagSpecifications: [{ResourceType: 'import-snapshot-task', Tags: tags}],
      }),
      {abortSignal: signal},
    ),
  );
  const taskId = started.ImportTaskId;
  if (!taskId) throw new TskitError('EC2 ImportSnapshot answered without a task id');
  const task = {provider: 'aws' as const, kind: 'import-snapshot-task', id: taskId, region: clients.region};
  await journal.record(task);
  emit({type: 'resource.created', provider: 'aws', kind: 'import-snapshot-task', id: taskId});

  const deadline = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
  let interval = options.pollMs ?? 1000;
  let lastMessage = '';
  for (;;) {
    await sleep(interval, signal);
    signal?.throwIfAborted();
    interval = Math.min(15_000, Math.round(interval * 1.5));
    const answer = await named('DescribeImportSnapshotTasks', ec2.send(new sdk.ec2.DescribeImportSnapshotTasksCommand({ImportTaskIds: [taskId]}), {abortSignal: signal}));
    const detail = answer.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail;
    const status = detail?.Status ?? 'unknown';
    const message = detail?.StatusMessage ?? '';
    const line = `${status}${message ? ` (${message})` : ''}`;
    if (line !== lastMessage) {
      emit({type: 'log', level: 'info', message: `import ${taskId}: ${line}`});
      lastMessage = line;
    }
    if (detail?.Progress) emit({type: 'progress', task: `import ${taskId}`, done: Number(detail.Progress), total: 100, unit: 'items'});
    if (status === 'completed') {
      const snapshotId = detail?.SnapshotId;
      if (!snapshotId) throw new TskitError(`import ${taskId} completed without a snapshot id`);
      await journal.record({provider: 'aws', kind: 'snapshot', id: snapshotId, region: clients.region});
      await journal.forget(task);
      emit({type: 'resource.created', provider: 'aws', kind: 'snapshot', id: snapshotId});
      // Import does not carry the task's tags over to the snapshot.
      await named('CreateTags', ec2.send(new sdk.ec2.CreateTagsCommand({Resources: [snapshotId], Tags: tags}), {abortSignal: signal}));
      return snapshotId;
    }
    if (status === 'deleted' || status === 'deleting' || status === 'error') {
      await journal.forget(task);
      throw new TskitError(`import of s3://${options.bucket}/${options.key} failed: ${message || status}${/role/i.test(message) ? ' (VM Import needs the vmimport service role: see docs/aws.md)' : ''}`);
    }
    if (Date.now() > deadline) throw new TskitError(`import ${taskId} is still ${line} after ${Math.round((options.timeoutMs ?? 7_200_000) / 60_000)} minutes`);
  }
}
