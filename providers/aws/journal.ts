// What the AWS provider writes down before each call that creates something billable, and
// crosses out after a confirmed delete, so a run killed with SIGKILL (or a power cut) leaves
// a list `tskit gc aws` can work through. The provider sees only this small interface; the
// commands give it the shared run journal (src/run/run-journal.ts), which `tskit gc` reads.
import type {Resource} from '../../src/provider.ts';

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

export interface AwsJournal {
  /** Called before the call that creates `resource` (or right after, when only then its id is known). */
  record(resource: AwsResource): Promise<void>;
  /** Called after `resource` is confirmed gone, or handed over (a pushed AMI is the product, not debris). */
  forget(resource: AwsResource): Promise<void>;
  /** Takes over a resource an interrupted earlier push recorded, when this one continues with it. */
  adopt?(resource: AwsResource): Promise<void>;
}

/** Records a resource this process continues with, taking it from a dead earlier process's journal when the journal can. */
export async function adoptOrRecord(journal: AwsJournal, resource: AwsResource): Promise<void> {
  await (journal.adopt ? journal.adopt(resource) : journal.record(resource));
}

export const noJournal: AwsJournal = {
  async record() {},
  async forget() {},
};
