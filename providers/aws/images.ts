// AMIs: register one from a snapshot, find one by content digest (idempotent pushes) or by id
// or name (what `tskit run aws` boots), and remove one with its snapshots.
import {TskitError} from '../../src/errors.ts';
import {sleep} from '../../src/run/signals.ts';
import type {BootSpelling} from '../../src/provider-kit/boot-choice.ts';
import {tagKeys} from '../../src/provider-kit/tags.ts';
import {awsError, isNotFound, named} from './errors.ts';
import type {AwsClients} from './sdk.ts';

/** EC2's names for what the boot probe reads (RegisterImage's Architecture and BootMode). */
export type Architecture = 'x86_64' | 'arm64';
export type BootMode = 'legacy-bios' | 'uefi' | 'uefi-preferred';
export const AWS_BOOT_SPELLING: BootSpelling<BootMode, Architecture> = {
  boot: {bios: 'legacy-bios', uefi: 'uefi', hybrid: 'uefi-preferred'},
  arch: {amd64: 'x86_64', arm64: 'arm64'},
};

/**
 * Tag keys tskit puts on what it creates (the kit's vocabulary in EC2's spelling,
 * `tskit:run-id`): index is the instance's place in its cluster (0-based, as its name ends),
 * network a cluster network's id (RUNID-net) on its interfaces.
 */
export const TAGS = tagKeys('aws');

export interface ImageInfo {
  imageId: string;
  name: string;
  state: string;
  architecture?: string;
  bootMode?: string;
  rootDeviceName?: string;
  snapshotIds: string[];
  /** The root device's mapping: does its volume go with the instance, and from which snapshot. */
  root?: {snapshotId?: string; deleteOnTermination?: boolean};
  tags: Record<string, string>;
  creationDate?: string;
}

type Ec2Image = import('@aws-sdk/client-ec2').Image;

function toInfo(image: Ec2Image): ImageInfo {
  return {
    imageId: image.ImageId ?? '',
    name: image.Name ?? '',
    state: image.State ?? 'unknown',
    ...(image.Architecture ? {architecture: image.Architecture} : {}),
    ...(image.BootMode ? {bootMode: image.BootMode} : {}),
    ...(image.RootDeviceName ? {rootDeviceName: image.RootDeviceName} : {}),
    snapshotIds: (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => Boolean(s)),
    ...rootOf(image),
    tags: Object.fromEntries((image.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
    ...(image.CreationDate ? {creationDate: image.CreationDate} : {}),
  };
}

function rootOf(image: Ec2Image): Pick<ImageInfo, 'root'> {
  const mapping = (image.BlockDeviceMappings ?? []).find((m) => m.DeviceName === image.RootDeviceName);
  if (!mapping?.Ebs) return {};
  return {root: {...(mapping.Ebs.SnapshotId ? {snapshotId: mapping.Ebs.SnapshotId} : {}), ...(mapping.Ebs.DeleteOnTermination !== undefined ? {deleteOnTermination: mapping.Ebs.DeleteOnTermination} : {})}};
}

async function describe(clients: AwsClients, input: import('@aws-sdk/client-ec2').DescribeImagesCommandInput, signal?: AbortSignal): Promise<ImageInfo[]> {
  const answer = await named('DescribeImages', clients.ec2.send(new clients.sdk.ec2.DescribeImagesCommand(input), {abortSignal: signal}));
  return (answer.Images ?? []).map(toInfo).sort((a, b) => (b.creationDate ?? '').localeCompare(a.creationDate ?? ''));
}

/** Our newest usable AMI of this content (digest tag), if any. */
export async function findImageByDigest(clients: AwsClients, sha256: string, signal?: AbortSignal): Promise<ImageInfo | undefined> {
  const images = await describe(clients, {Owners: ['self'], Filters: [{Name: `tag:${TAGS.digest}`, Values: [`sha256:${sha256}`]}]}, signal);
  return images.find((i) => i.state === 'available' || i.state === 'pending');
}

export async function findImageByName(clients: AwsClients, name: string, signal?: AbortSignal): Promise<ImageInfo | undefined> {
  return (await describe(clients, {Owners: ['self'], Filters: [{Name: 'name', Values: [name]}]}, signal))[0];
}

/** An AMI id (ami-...) or the name of one of our AMIs, ready to launch. */
export async function resolveImage(clients: AwsClients, ref: string, signal?: AbortSignal): Promise<ImageInfo> {
  let image: ImageInfo | undefined;
  if (/^ami-[0-9a-f]{8,17}$/.test(ref)) {
    try {
      image = (await describe(clients, {ImageIds: [ref]}, signal))[0];
    } catch (error) {
      if (!isNotFound((error as Error).cause ?? error)) throw error;
    }
  } else {
    image = await findImageByName(clients, ref, signal);
  }
  if (!image) throw new TskitError(`no AMI ${ref} in ${clients.region}: push one with \`tskit push aws IMAGE_FILE\` or check the region (AWS_REGION)`);
  if (image.state !== 'available') throw new TskitError(`AMI ${image.imageId} is ${image.state}, not available`);
  return image;
}

export interface RegisterOptions {
  name: string;
  description: string;
  snapshotId: string;
  arch: Architecture;
  bootMode?: BootMode;
  ena: boolean;
  tags: Record<string, string>;
  signal?: AbortSignal;
}

export async function registerImage(clients: AwsClients, options: RegisterOptions): Promise<string> {
  const answer = await named(
    'RegisterImage',
    clients.ec2.send(
      new clients.sdk.ec2.RegisterImageCommand({
        Name: options.name,
        Description: options.description,
        Architecture: options.arch,
        VirtualizationType: 'hvm',
        RootDeviceName: '/dev/xvda',
        BlockDeviceMappings: [{DeviceName: '/dev/xvda', Ebs: {SnapshotId: options.snapshotId, DeleteOnTermination: true, VolumeType: 'gp3'}}],
        EnaSupport: options.ena,
        ...(options.bootMode ? {BootMode: options.bootMode} : {}),
        ImdsSupport: 'v2.0',
        TagSpecifications: [{ResourceType: 'image', Tags: Object.entries(options.tags).map(([Key, Value]) => ({Key, Value}))}],
      }),
      {abortSignal: options.signal},
    ),
  );
  if (!answer.ImageId) throw new TskitError('EC2 RegisterImage answered without an image id');
  return answer.ImageId;
}

export async function waitImageAvailable(clients: AwsClients, imageId: string, signal?: AbortSignal, timeoutMs = 20 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const image = (await describe(clients, {ImageIds: [imageId]}, signal))[0];
    if (image?.state === 'available') return;
    if (image?.state === 'failed' || image?.state === 'error' || image?.state === 'invalid') throw new TskitError(`AMI ${imageId} is ${image.state}`);
    if (Date.now() > deadline) throw new TskitError(`AMI ${imageId} is still ${image?.state ?? 'missing'} after ${Math.round(timeoutMs / 60_000)} minutes`);
    await sleep(Math.min(10_000, 1000 * (attempt + 1)), signal);
    signal?.throwIfAborted();
  }
}

/** Deregisters an AMI and deletes its snapshots; both gone already is success. */
export async function deleteImage(clients: AwsClients, imageId: string, signal?: AbortSignal): Promise<void> {
  let snapshots: string[] = [];
  try {
    snapshots = (await describe(clients, {ImageIds: [imageId]}, signal))[0]?.snapshotIds ?? [];
  } catch (error) {
    if (!isNotFound((error as Error).cause ?? error)) throw error;
  }
  try {
    await clients.ec2.send(new clients.sdk.ec2.DeregisterImageCommand({ImageId: imageId}), {abortSignal: signal});
  } catch (error) {
    if (!isNotFound(error)) throw awsError(error, 'DeregisterImage');
  }
  for (const snapshotId of snapshots) await deleteSnapshot(clients, snapshotId, signal);
}

export async function deleteSnapshot(clients: AwsClients, snapshotId: string, signal?: AbortSignal): Promise<void> {
  try {
    await clients.ec2.send(new clients.sdk.ec2.DeleteSnapshotCommand({SnapshotId: snapshotId}), {abortSignal: signal});
  } catch (error) {
    if (!isNotFound(error)) throw awsError(error, 'DeleteSnapshot');
  }
}
