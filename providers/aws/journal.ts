// What the AWS provider writes down before each call that creates something billable, and
// crosses out after a confirmed delete (the provider kit's journal-first pattern,
// src/provider-kit/journal.ts), with AWS's resource kinds.
import type {Resource} from '../../src/provider.ts';
import type {ProviderJournal} from '../../src/provider-kit/journal.ts';

export {adoptOrRecord, noJournal} from '../../src/provider-kit/journal.ts';

/**
 * An AWS resource as the journal and `destroy` know it. Kinds: instance, client-token (the
 * instances one RunInstances call made, found by its ClientToken when the call's answer was
 * lost), volume, network (a cluster's interfaces, by its tskit:network tag), network-interface, security-group, image, snapshot, import-snapshot-task,
 * s3-object (id `bucket/key`), s3-multipart-upload (id `bucket/key#uploadId`).
 */
export interface AwsResource extends Resource {
  provider: 'aws';
  region?: string;
}

export type AwsJournal = ProviderJournal<AwsResource>;
