// A cluster's network on EC2: one subnet, and one network interface per member made before
// any instance starts, so every member's private address is known in time to be in each
// member's user data (EC2 fixes user data at launch). Each instance boots on its own interface
// (device 0), all in the same subnet and security groups.
//
// The network is journalled before its first interface is made; its interfaces carry the
// tskit:network tag, which is how teardown and `tskit gc aws` find them, and how an
// instance's teardown knows to leave a pending member's interface alone.
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import type {ClusterNetwork} from '../../src/provider.ts';
import {awsError, isNotFound} from './errors.ts';
import {TAGS} from './images.ts';
import type {AwsRunOptions} from './instances.ts';
import type {AwsJournal, AwsResource} from './journal.ts';
import type {AwsClients} from './sdk.ts';

export interface ClusterInterface {
  id: string;
  address: string;
  mac: string;
}

/** What `run` needs of a network beyond its addresses. */
export interface AwsNetworkDetail extends Record<string, unknown> {
  region: string;
  subnet: string;
  interfaces: ClusterInterface[];
}

export async function createClusterInterfaces(clients: AwsClients, size: number, options: AwsRunOptions, runId: string, journal: AwsJournal, emit: Emit, signal: AbortSignal): Promise<ClusterNetwork & {detail: AwsNetworkDetail}> {
  const {ec2, sdk, region} = clients;
  const subnet = await clusterSubnet(clients, options.subnet);
  const prefix = subnet.CidrBlock?.split('/')[1] ?? '32';
  const resource: AwsResource = {provider: 'aws', kind: 'network', id: `${runId}-net`, runId, region, detail: {subnet: subnet.SubnetId}};
  await journal.record(resource);
  const made: ClusterInterface[] = [];
  try {
    for (let index = 0; index < size; index++) {
      signal.throwIfAborted();
      const tags = [
        {Key: TAGS.runId, Value: runId},
        {Key: TAGS.created, Value: new Date().toISOString()},
        {Key: TAGS.network, Value: resource.id},
        {Key: TAGS.index, Value: String(index)},
        {Key: 'Name', Value: `${resource.id}-${index}`},
        ...(options.keep ? [{Key: TAGS.keep, Value: 'true'}] : []),
      ];
      const answer = await ec2.send(
        new sdk.ec2.CreateNetworkInterfaceCommand({
          SubnetId: subnet.SubnetId,
          ...(options.securityGroups?.length ? {Groups: options.securityGroups} : {}),
          Description: `tskit run ${runId}, member ${index}`,
          ClientToken: `${resource.id}-${index}`,
          TagSpecifications: [{ResourceType: 'network-interface', Tags: tags}],
        }),
      );
      const eni = answer.NetworkInterface;
      if (!eni?.NetworkInterfaceId || !eni.PrivateIpAddress) throw new TskitError('CreateNetworkInterface answered without an interface id and address');
      made.push({id: eni.NetworkInterfaceId, address: eni.PrivateIpAddress, mac: eni.MacAddress ?? ''});
      emit({type: 'resource.created', provider: 'aws', kind: 'network-interface', id: eni.NetworkInterfaceId, runId});
    }
  } catch (error) {
    await deleteClusterInterfaces(clients, resource.id, made.map((i) => i.id)).catch(() => {});
    await journal.forget(resource);
    if (error instanceof TskitError || signal.aborted) throw error;
    throw awsError(error, 'CreateNetworkInterface');
  }
  const detail: AwsNetworkDetail = {region, subnet: subnet.SubnetId!, interfaces: made};
  emit({type: 'log', level: 'debug', message: `cluster network ${resource.id}: ${size} interfaces in ${subnet.SubnetId} (${subnet.CidrBlock}), ${made[0]?.address} to ${made.at(-1)?.address}`});
  return {provider: 'aws', kind: 'network', id: resource.id, runId, addresses: made.map((i) => `${i.address}/${prefix}`), detail};
}

/** The subnet asked for, or the default VPC's default subnet in the first zone by name (the same every run). */
async function clusterSubnet(clients: AwsClients, wanted: string | undefined) {
  const {ec2, sdk, region} = clients;
  let subnets;
  try {
    const answer = await ec2.send(new sdk.ec2.DescribeSubnetsCommand(wanted ? {SubnetIds: [wanted]} : {Filters: [{Name: 'default-for-az', Values: ['true']}]}));
    subnets = (answer.Subnets ?? []).filter((s) => s.SubnetId).sort((a, b) => (a.AvailabilityZone ?? '').localeCompare(b.AvailabilityZone ?? ''));
  } catch (error) {
    throw awsError(error, 'DescribeSubnets');
  }
  if (subnets.length === 0) throw new TskitError(wanted ? `aws: subnet ${wanted} does not exist in ${region}` : `aws: ${region} has no default subnet for a cluster's instances to share: pass --subnet`);
  return subnets[0]!;
}

/**
 * Deletes a network's interfaces: the ones named and any carrying its tag. One still in use
 * (its instance is terminating) is waited for, up to `waitMs`.
 */
export async function deleteClusterInterfaces(clients: AwsClients, networkId: string, known: string[] = [], waitMs = 120_000, hurry?: AbortSignal): Promise<void> {
  const {ec2, sdk} = clients;
  const tagged = await ec2.send(new sdk.ec2.DescribeNetworkInterfacesCommand({Filters: [{Name: `tag:${TAGS.network}`, Values: [networkId]}]}));
  const ids = new Set([...known, ...(tagged.NetworkInterfaces ?? []).flatMap((i) => (i.NetworkInterfaceId ? [i.NetworkInterfaceId] : []))]);
  const deadline = Date.now() + waitMs;
  for (const id of ids) {
    for (;;) {
      try {
        await ec2.send(new sdk.ec2.DeleteNetworkInterfaceCommand({NetworkInterfaceId: id}));
        break;
      } catch (error) {
        if (isNotFound(error)) break;
        const inUse = /InvalidNetworkInterface\.InUse|in use|currently in use/i.test(`${(error as {name?: string}).name} ${(error as Error).message}`);
        if (!inUse || Date.now() > deadline || hurry?.aborted) throw awsError(error, 'DeleteNetworkInterface');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}
