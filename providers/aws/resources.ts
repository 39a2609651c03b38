// Removing what tskit made, one resource at a time (teardown and `tskit gc aws`), and
// finding what a killed run or push left behind by its tags (`list`). Every delete treats
// "not found" as done.
import {TskitError} from '../../src/errors.ts';
import {olderThan, type StrayFilter} from '../../src/provider-kit/tags.ts';
import {deleteClusterInterfaces} from './cluster-network.ts';
import {awsError, isNotFound} from './errors.ts';
import {deleteImage, deleteSnapshot, TAGS} from './images.ts';
import {terminate, terminateByToken} from './instances.ts';
import type {AwsResource} from './journal.ts';
import type {AwsClients} from './sdk.ts';

async function ignoreNotFound(operation: string, call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!isNotFound(error)) throw awsError(error, operation);
  }
}

/** Deletes one resource. `wait` lets an instance reach `terminated` (so its volumes are gone) first. */
export async function destroyResource(clients: AwsClients, resource: AwsResource, wait: boolean, hurry?: AbortSignal): Promise<void> {
  if (resource.kind.startsWith('s3-')) await clients.load('s3');
  const {ec2, sdk} = clients;
  switch (resource.kind) {
    case 'instance':
      await terminate(clients, [resource.id], wait, hurry);
      if (wait && resource.runId && !hurry?.aborted) await deleteRunLeftovers(clients, resource.runId);
      return;
    case 'client-token':
      await terminateByToken(clients, resource.id);
      return;
    case 'volume':
      return ignoreNotFound('DeleteVolume', ec2.send(new sdk.ec2.DeleteVolumeCommand({VolumeId: resource.id})));
    case 'network': {
      const interfaces = (resource.detail as {interfaces?: Array<{id: string}>} | undefined)?.interfaces ?? [];
      return deleteClusterInterfaces(clients, resource.id, interfaces.map((i) => i.id), wait ? 120_000 : 0, hurry);
    }
    case 'network-interface':
      return ignoreNotFound('DeleteNetworkInterface', ec2.send(new sdk.ec2.DeleteNetworkInterfaceCommand({NetworkInterfaceId: resource.id})));
    case 'security-group':
      return ignoreNotFound('DeleteSecurityGroup', ec2.send(new sdk.ec2.DeleteSecurityGroupCommand({GroupId: resource.id})));
    case 'image':
      return deleteImage(clients, resource.id);
    case 'snapshot':
      return deleteSnapshot(clients, resource.id);
    case 'snapshot-token': {
      const answer = await ec2.send(new sdk.ec2.DescribeSnapshotsCommand({OwnerIds: ['self'], Filters: [{Name: `tag:${TAGS.clientToken}`, Values: [resource.id]}]}));
      for (const snapshot of answer.Snapshots ?? []) if (snapshot.SnapshotId) await deleteSnapshot(clients, snapshot.SnapshotId);
      return;
    }
    case 'import-snapshot-task':
      return ignoreNotFound('CancelImportTask', ec2.send(new sdk.ec2.CancelImportTaskCommand({ImportTaskId: resource.id}))).catch((error: unknown) => {
        // A task that already finished cannot be cancelled: nothing left to do.
        if (!/completed|deleted|Invalid/i.test((error as Error).message)) throw error;
      });
    case 's3-object': {
      const slash = resource.id.indexOf('/');
      return ignoreNotFound('DeleteObject', clients.s3.send(new sdk.s3.DeleteObjectCommand({Bucket: resource.id.slice(0, slash), Key: resource.id.slice(slash + 1)})));
    }
    case 's3-multipart-upload': {
      const slash = resource.id.indexOf('/');
      const hash = resource.id.lastIndexOf('#');
      return ignoreNotFound('AbortMultipartUpload', clients.s3.send(new sdk.s3.AbortMultipartUploadCommand({Bucket: resource.id.slice(0, slash), Key: resource.id.slice(slash + 1, hash), UploadId: resource.id.slice(hash + 1)})));
    }
    default:
      throw new TskitError(`aws: do not know how to remove a ${resource.kind} (${resource.id})`);
  }
}

/** Volumes and network interfaces of a run that outlived its instances (not delete-on-termination, or a cloud that keeps them). */
export async function deleteRunLeftovers(clients: AwsClients, runId: string): Promise<void> {
  const {ec2, sdk} = clients;
  const filter = [{Name: `tag:${TAGS.runId}`, Values: [runId]}];
  const volumes = await ec2.send(new sdk.ec2.DescribeVolumesCommand({Filters: [...filter, {Name: 'status', Values: ['available']}]}));
  for (const volume of volumes.Volumes ?? []) if (volume.VolumeId) await ignoreNotFound('DeleteVolume', ec2.send(new sdk.ec2.DeleteVolumeCommand({VolumeId: volume.VolumeId})));
  const interfaces = await ec2.send(new sdk.ec2.DescribeNetworkInterfacesCommand({Filters: [...filter, {Name: 'status', Values: ['available']}]}));
  for (const eni of interfaces.NetworkInterfaces ?? []) {
    // a cluster network's interfaces go with the network: one may be a member's still to launch
    if (!eni.NetworkInterfaceId || tag(eni, TAGS.network)) continue;
    await ignoreNotFound('DeleteNetworkInterface', ec2.send(new sdk.ec2.DeleteNetworkInterfaceCommand({NetworkInterfaceId: eni.NetworkInterfaceId})));
  }
}

export type ListFilter = StrayFilter;

type Tagged = {Tags?: {Key?: string; Value?: string}[]; TagSet?: {Key?: string; Value?: string}[]};

function tag(item: Tagged, key: string): string | undefined {
  return (item.Tags ?? item.TagSet)?.find((t) => t.Key === key)?.Value;
}


/**
 * What tskit created and nobody is using: instances of runs (not --keep ones), their
 * volumes and network interfaces once detached, security groups tagged with a run id, and
 * snapshots of pushes that never became an AMI. Pushed AMIs are products, not listed.
 */
export async function* listStrays(clients: AwsClients, filter: ListFilter): AsyncIterable<AwsResource> {
  const {ec2, sdk, region} = clients;
  const runFilter = filter.runId ? [{Name: `tag:${TAGS.runId}`, Values: [filter.runId]}] : [{Name: 'tag-key', Values: [TAGS.runId]}];
  const base = {provider: 'aws' as const, region};

  let token: string | undefined;
  do {
    const page = await ec2.send(new sdk.ec2.DescribeInstancesCommand({Filters: [...runFilter, {Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped']}], NextToken: token}));
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (tag(instance, TAGS.keep) === 'true' || !instance.InstanceId) continue;
      const created = tag(instance, TAGS.created) ?? instance.LaunchTime;
      if (!olderThan(created, filter.olderThan)) continue;
      yield {...base, kind: 'instance', id: instance.InstanceId, runId: tag(instance, TAGS.runId) ?? '', createdAt: new Date(created ?? Date.now()).toISOString()};
    }
    token = page.NextToken;
  } while (token);

  const volumes = await ec2.send(new sdk.ec2.DescribeVolumesCommand({Filters: [...runFilter, {Name: 'status', Values: ['available']}]}));
  for (const volume of volumes.Volumes ?? []) {
    if (!volume.VolumeId || tag(volume, TAGS.keep) === 'true') continue;
    const created = tag(volume, TAGS.created) ?? volume.CreateTime;
    if (olderThan(created, filter.olderThan)) yield {...base, kind: 'volume', id: volume.VolumeId, runId: tag(volume, TAGS.runId) ?? ''};
  }
  const interfaces = await ec2.send(new sdk.ec2.DescribeNetworkInterfacesCommand({Filters: [...runFilter, {Name: 'status', Values: ['available']}]}));
  for (const eni of interfaces.NetworkInterfaces ?? []) {
    if (!eni.NetworkInterfaceId || tag(eni, TAGS.keep) === 'true') continue;
    if (olderThan(tag(eni, TAGS.created), filter.olderThan)) yield {...base, kind: 'network-interface', id: eni.NetworkInterfaceId, runId: tag(eni, TAGS.runId) ?? ''};
  }
  const groups = await ec2.send(new sdk.ec2.DescribeSecurityGroupsCommand({Filters: runFilter}));
  for (const group of groups.SecurityGroups ?? []) {
    if (!group.GroupId || tag(group, TAGS.keep) === 'true') continue;
    if (olderThan(tag(group, TAGS.created), filter.olderThan)) yield {...base, kind: 'security-group', id: group.GroupId, runId: tag(group, TAGS.runId) ?? ''};
  }

  if (filter.runId) return;
  // Snapshots of pushes that died before RegisterImage: tagged with a digest, in no AMI of ours.
  const snapshots = await ec2.send(new sdk.ec2.DescribeSnapshotsCommand({OwnerIds: ['self'], Filters: [{Name: 'tag-key', Values: [TAGS.digest]}]}));
  if (!snapshots.Snapshots?.length) return;
  const images = await ec2.send(new sdk.ec2.DescribeImagesCommand({Owners: ['self']}));
  const used = new Set((images.Images ?? []).flatMap((i) => (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId)));
  for (const snapshot of snapshots.Snapshots) {
    if (!snapshot.SnapshotId || used.has(snapshot.SnapshotId)) continue;
    const created = tag(snapshot, TAGS.created) ?? snapshot.StartTime;
    if (olderThan(created, filter.olderThan)) yield {...base, kind: 'snapshot', id: snapshot.SnapshotId};
  }
}
