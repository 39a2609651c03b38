// EC2 instances for `tskit run aws`: launch (tagged with the run id, recorded in the journal
// by client token before the call), the serial console by polling GetConsoleOutput, the
// instance's end from DescribeInstances, and termination.
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import type {Instance, InstanceEnd} from '../../src/provider.ts';
import {sleep} from '../../src/run/signals.ts';
import {ConsoleTail} from './console-tail.ts';
import {awsError, isNotFound, named} from './errors.ts';
import {resolveImage, TAGS} from './images.ts';
import type {AwsJournal} from './journal.ts';
import type {AwsClients} from './sdk.ts';

export interface AwsRunOptions {
  instanceType?: string;
  subnet?: string;
  securityGroups?: string[];
  keyName?: string;
  count?: number;
  /** Leave the instances running after the run (they keep the tskit:keep tag; gc skips them). */
  keep?: boolean;
  /** How often to poll the console (GetConsoleOutput) and the instance state. */
  pollMs?: number;
  /** Reuse a run id (default: a new one). */
  runId?: string;
  /** User data for the instances (the run's, from --user-data). */
  userData?: string;
}

/** Which instance of a run one RunInstances call starts: its own client token and name. */
export interface LaunchSlot {
  /** Idempotency token: the same for a retried call, different for each instance of a cluster. */
  clientToken: string;
  /** The instance's name (Name tag, console prefix); its id when absent. */
  name?: string;
  /** Its index in the cluster (tagged tskit:index, so the guest and DescribeInstances can tell the instances apart). */
  index?: number;
  /** A cluster network's interface to boot on (device 0), instead of one made in --subnet. */
  networkInterface?: string;
}

const DEFAULT_TYPES: Record<string, string> = {x86_64: 't3.micro', arm64: 't4g.micro'};

export async function launch(clients: AwsClients, ref: string, options: AwsRunOptions, runId: string, slot: LaunchSlot, journal: AwsJournal, emit: Emit, signal: AbortSignal): Promise<Instance[]> {
  const image = await resolveImage(clients, ref, signal);
  const count = options.count ?? 1;
  const instanceType = options.instanceType ?? DEFAULT_TYPES[image.architecture ?? 'x86_64'] ?? 't3.micro';
  const userData = options.userData === undefined ? undefined : Buffer.from(options.userData);
  if (userData && userData.length > 16 * 1024) throw new TskitError(`--user-data is ${userData.length} bytes; EC2 takes at most 16 KiB`);
  const tags = [
    {Key: TAGS.runId, Value: runId},
    {Key: TAGS.created, Value: new Date().toISOString()},
    {Key: 'Name', Value: slot.name ?? runId},
    ...(slot.index === undefined ? [] : [{Key: TAGS.index, Value: String(slot.index)}]),
    ...(options.keep ? [{Key: TAGS.keep, Value: 'true'}] : []),
  ];
  // The client token finds the instances again if the answer to RunInstances is lost.
  const token = {provider: 'aws' as const, kind: 'client-token', id: slot.clientToken, runId, region: clients.region};
  await journal.record(token);
  let reservation;
  try {
    reservation = await clients.ec2.send(
      new clients.sdk.ec2.RunInstancesCommand({
        ImageId: image.imageId,
        InstanceType: instanceType as never,
        MinCount: count,
        MaxCount: count,
        ClientToken: slot.clientToken,
        // an existing interface brings its subnet and groups (EC2 refuses them beside it)
        ...(slot.networkInterface
          ? {NetworkInterfaces: [{DeviceIndex: 0, NetworkInterfaceId: slot.networkInterface}]}
          : {...(options.subnet ? {SubnetId: options.subnet} : {}), ...(options.securityGroups?.length ? {SecurityGroupIds: options.securityGroups} : {})}),
        ...(options.keyName ? {KeyName: options.keyName} : {}),
        ...(userData ? {UserData: userData.toString('base64')} : {}),
        InstanceInitiatedShutdownBehavior: 'stop',
        MetadataOptions: {HttpTokens: 'required', HttpEndpoint: 'enabled'},
        // The root volume goes with the instance whatever the AMI says.
        ...(image.rootDeviceName && image.root?.deleteOnTermination !== true
          ? {BlockDeviceMappings: [{DeviceName: image.rootDeviceName, Ebs: {DeleteOnTermination: true, ...(image.root?.snapshotId ? {SnapshotId: image.root.snapshotId} : {})}}]}
          : {}),
        TagSpecifications: [
          {ResourceType: 'instance', Tags: tags},
          {ResourceType: 'volume', Tags: tags},
          ...(slot.networkInterface ? [] : [{ResourceType: 'network-interface' as const, Tags: tags}]),
        ],
      }),
      // Not aborted mid-call: an instance the answer to an abandoned call names would be lost.
    );
  } catch (error) {
    await terminateByToken(clients, slot.clientToken).catch(() => {});
    await journal.forget(token);
    throw awsError(error, 'RunInstances');
  }
  const instances: Instance[] = [];
  for (const item of reservation.Instances ?? []) {
    if (!item.InstanceId) continue;
    await journal.record({provider: 'aws', kind: 'instance', id: item.InstanceId, runId, region: clients.region});
    emit({type: 'resource.created', provider: 'aws', kind: 'instance', id: item.InstanceId, runId});
    instances.push({
      provider: 'aws',
      id: item.InstanceId,
      name: slot.name && count === 1 ? slot.name : item.InstanceId,
      detail: {region: clients.region, runId, imageId: image.imageId, instanceType, ...(item.Placement?.AvailabilityZone ? {zone: item.Placement.AvailabilityZone} : {})},
    });
  }
  await journal.forget(token);
  if (instances.length !== count) {
    await terminate(clients, instances.map((i) => i.id), false).catch(() => {});
    throw new TskitError(`EC2 started ${instances.length} instances, not ${count}`);
  }
  return instances;
}

/** Terminates what one RunInstances call made, found by its client token. */
export async function terminateByToken(clients: AwsClients, token: string): Promise<string[]> {
  const answer = await named('DescribeInstances', clients.ec2.send(new clients.sdk.ec2.DescribeInstancesCommand({Filters: [{Name: 'client-token', Values: [token]}]})));
  const ids = (answer.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => i.State?.Name !== 'terminated').map((i) => i.InstanceId!).filter(Boolean);
  if (ids.length) await terminate(clients, ids, false);
  return ids;
}

/** TerminateInstances, then (unless hurried) wait until they are terminated. Gone already is success. */
export async function terminate(clients: AwsClients, ids: string[], wait: boolean, hurry?: AbortSignal, timeoutMs = 5 * 60_000): Promise<void> {
  if (ids.length === 0) return;
  try {
    await clients.ec2.send(new clients.sdk.ec2.TerminateInstancesCommand({InstanceIds: ids}));
  } catch (error) {
    if (isNotFound(error)) {
      // One unknown id fails the whole call: do them one by one.
      if (ids.length > 1) for (const id of ids) await terminate(clients, [id], false);
      else return;
    } else throw awsError(error, 'TerminateInstances');
  }
  if (!wait) return;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && !hurry?.aborted; attempt++) {
    const states = await instanceStates(clients, ids);
    if ([...states.values()].every((s) => s.state === 'terminated')) return;
    await sleep(Math.min(5000, 500 * (attempt + 1)), hurry);
  }
}

export interface InstanceState {
  state: string;
  reasonCode?: string;
  reasonMessage?: string;
}

export async function instanceStates(clients: AwsClients, ids: string[], signal?: AbortSignal): Promise<Map<string, InstanceState>> {
  const states = new Map<string, InstanceState>();
  let answer;
  try {
    answer = await clients.ec2.send(new clients.sdk.ec2.DescribeInstancesCommand({InstanceIds: ids}), {abortSignal: signal});
  } catch (error) {
    if (isNotFound(error)) {
      for (const id of ids) states.set(id, {state: 'terminated'});
      return states;
    }
    throw awsError(error, 'DescribeInstances');
  }
  for (const instance of (answer.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
    states.set(instance.InstanceId!, {
      state: instance.State?.Name ?? 'unknown',
      ...(instance.StateReason?.Code ? {reasonCode: instance.StateReason.Code} : {}),
      ...(instance.StateReason?.Message ? {reasonMessage: instance.StateReason.Message} : {}),
    });
  }
  return states;
}

/** Shared between an instance's console reader and its waiter: once it has stopped, the console reads once more and ends. */
export interface Watch {
  stopped: boolean;
}

/** The serial console: GetConsoleOutput (Latest) every `pollMs`, only bytes not seen before. */
export async function* consoleStream(clients: AwsClients, instanceId: string, pollMs: number, watch: Watch, emit: Emit, signal: AbortSignal): AsyncIterable<Uint8Array> {
  const tail = new ConsoleTail();
  let latestSupported = true;
  let gapReported = false;
  for (;;) {
    if (signal.aborted) return;
    const last = watch.stopped;
    let output: string | undefined;
    try {
      const answer = await clients.ec2.send(new clients.sdk.ec2.GetConsoleOutputCommand({InstanceId: instanceId, ...(latestSupported ? {Latest: true} : {})}), {abortSignal: signal});
      output = answer.Output;
    } catch (error) {
      if (signal.aborted) return;
      // Xen instance types do not offer Latest; their buffered output is all they have.
      if (latestSupported && /Latest|UnsupportedOperation/i.test(`${(error as Error).name} ${(error as Error).message}`)) {
        latestSupported = false;
        continue;
      }
      throw awsError(error, 'GetConsoleOutput');
    }
    if (output) {
      const {fresh, gap} = tail.push(Buffer.from(output, 'base64'));
      if (gap && !gapReported) {
        gapReported = true;
        emit({type: 'log', level: 'warn', message: `${instanceId}: console output was lost between two polls (more than EC2's 64 KiB window); poll more often with --poll-interval`});
      }
      if (fresh.length) yield new Uint8Array(fresh);
    }
    if (last) return;
    await sleep(pollMs, signal);
  }
}

/** Resolves when the instance stops or terminates on its own, saying how. */
export async function waitForEnd(clients: AwsClients, instanceId: string, pollMs: number, watch: Watch, signal: AbortSignal): Promise<InstanceEnd> {
  for (;;) {
    await sleep(pollMs, signal);
    signal.throwIfAborted();
    const state = (await instanceStates(clients, [instanceId], signal)).get(instanceId) ?? {state: 'terminated'};
    if (!['stopped', 'terminated', 'stopping', 'shutting-down'].includes(state.state)) continue;
    watch.stopped = true;
    const why = state.reasonMessage ?? state.reasonCode ?? state.state;
    switch (state.reasonCode) {
      case 'Client.InstanceInitiatedShutdown':
        return {state: 'poweroff', detail: `the guest shut down (${instanceId} ${state.state})`};
      case 'Server.InternalError':
      case 'Server.InsufficientInstanceCapacity':
      case 'Client.VolumeLimitExceeded':
      case 'Client.InternalError':
      case 'Client.InvalidSnapshot.NotFound':
        return {state: 'error', detail: `${instanceId} ${state.state}: ${why}`};
      default:
        return {state: 'stopped', detail: `${instanceId} ${state.state} from outside: ${why}`};
    }
  }
}
