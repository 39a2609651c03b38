// How tskit marks what it creates in each cloud, spelled as that cloud allows: the run that
// made it (`gc` finds a dead run's leftovers by it), the content digest an image holds (a
// second push of the same bytes finds the image instead of uploading), when it was made,
// and `keep` (--keep: gc leaves it). One vocabulary, one spelling per cloud:
//
// | cloud            | key             | value rules                                            |
// |------------------|-----------------|--------------------------------------------------------|
// | aws, vsphere     | `tskit:run-id`  | 256 characters                                         |
// | azure, hyperv    | `tskit-run-id`  | 256 characters (names: no < > % & \ ? /)               |
// | gcp (GCE labels) | `tskit-run-id`  | 63 characters of a-z 0-9 _ -; keys start with a letter |
import {TskitError} from '../errors.ts';

export type TagStyle = 'aws' | 'azure' | 'gcp' | 'vsphere' | 'hyperv';

/** What tskit records about a resource (each optional). */
export interface TskitTags {
  runId?: string;
  /** sha256 hex of the image content (spelled per cloud by digestValue). */
  digest?: string;
  created?: Date;
  keep?: boolean;
  /** The file an image came from (its base name). */
  source?: string;
  /** A cluster member's index. */
  index?: number;
  /** A cluster network's id. */
  network?: string;
  /** The idempotency token of the call that created it. */
  clientToken?: string;
}

const NAMES = {runId: 'run-id', digest: 'digest', created: 'created', keep: 'keep', source: 'source', index: 'index', network: 'network', clientToken: 'client-token'} as const satisfies Record<keyof TskitTags, string>;

interface Rules {
  separator: ':' | '-';
  maxKey: number;
  maxValue: number;
  /** Values are lowercase a-z, 0-9, _ and - only (GCE labels). */
  labels: boolean;
  forbiddenInKey?: RegExp;
}

const RULES: Record<TagStyle, Rules> = {
  aws: {separator: ':', maxKey: 128, maxValue: 256, labels: false},
  vsphere: {separator: ':', maxKey: 256, maxValue: 256, labels: false},
  azure: {separator: '-', maxKey: 512, maxValue: 256, labels: false, forbiddenInKey: /[<>%&\\?/]/},
  hyperv: {separator: '-', maxKey: 512, maxValue: 256, labels: false},
  gcp: {separator: '-', maxKey: 63, maxValue: 63, labels: true},
};

/** The key of one of tskit's tags in `style`: tagKey('aws', 'runId') is `tskit:run-id`. */
export function tagKey(style: TagStyle, name: keyof TskitTags): string {
  return `tskit${RULES[style].separator}${NAMES[name]}`;
}

/** Every tskit tag key in `style`, by name. */
export function tagKeys(style: TagStyle): {readonly [K in keyof TskitTags]-?: string} {
  return Object.fromEntries(Object.keys(NAMES).map((name) => [name, tagKey(style, name as keyof TskitTags)])) as {[K in keyof TskitTags]-?: string};
}

/** A value as `style` allows it: GCE labels are lowercased, other characters become '-', cut at 63. */
export function tagValue(style: TagStyle, value: string): string {
  const rules = RULES[style];
  if (!rules.labels) return value.slice(0, rules.maxValue);
  return value.toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, rules.maxValue);
}

/** The digest as a tag value: `sha256:HEX`, or for GCE labels `sha256-` and the first 56 hex digits (224 bits). */
export function digestValue(style: TagStyle, sha256: string): string {
  return RULES[style].labels ? `sha256-${sha256.slice(0, 56)}` : `sha256:${sha256}`;
}

function createdValue(style: TagStyle, date: Date): string {
  // a GCE label cannot hold ':' or '.': seconds since 1970
  return RULES[style].labels ? String(Math.floor(date.getTime() / 1000)) : date.toISOString();
}

/** tskit's tags for a resource, keys and values spelled for `style`. */
export function tskitTags(style: TagStyle, tags: TskitTags): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (name: keyof TskitTags, value: string | undefined): void => {
    if (value !== undefined) out[tagKey(style, name)] = tagValue(style, value);
  };
  put('runId', tags.runId);
  if (tags.digest) out[tagKey(style, 'digest')] = digestValue(style, tags.digest);
  if (tags.created) out[tagKey(style, 'created')] = createdValue(style, tags.created);
  put('keep', tags.keep ? 'true' : undefined);
  put('source', tags.source);
  put('index', tags.index === undefined ? undefined : String(tags.index));
  put('network', tags.network);
  put('clientToken', tags.clientToken);
  return out;
}

type TagList = ReadonlyArray<{Key?: string; Value?: string}> | Readonly<Record<string, string | undefined>> | undefined;

/** tskit's tags read back from a resource's tags (a map, or AWS's [{Key, Value}] list). */
export function readTskitTags(style: TagStyle, tags: TagList): TskitTags & {keep: boolean} {
  const map: Record<string, string | undefined> = Array.isArray(tags) ? Object.fromEntries((tags as Array<{Key?: string; Value?: string}>).map((t) => [t.Key ?? '', t.Value])) : {...(tags as Record<string, string | undefined> | undefined)};
  const get = (name: keyof TskitTags): string | undefined => map[tagKey(style, name)];
  const created = get('created');
  const createdDate = created === undefined ? undefined : RULES[style].labels && /^\d+$/.test(created) ? new Date(Number(created) * 1000) : new Date(created);
  const digest = get('digest');
  const index = get('index');
  return {
    keep: get('keep') === 'true',
    ...(get('runId') !== undefined ? {runId: get('runId')!} : {}),
    ...(digest !== undefined ? {digest: digest.replace(/^sha256[:-]/, '')} : {}),
    ...(createdDate && !Number.isNaN(createdDate.getTime()) ? {created: createdDate} : {}),
    ...(get('source') !== undefined ? {source: get('source')!} : {}),
    ...(index !== undefined && /^\d+$/.test(index) ? {index: Number(index)} : {}),
    ...(get('network') !== undefined ? {network: get('network')!} : {}),
    ...(get('clientToken') !== undefined ? {clientToken: get('clientToken')!} : {}),
  };
}

/** Checks tags a user gave (--tag KEY=VALUE) against `style`'s rules; throws one line naming the first problem. */
export function checkUserTags(style: TagStyle, tags: Readonly<Record<string, string>>, flag = '--tag'): void {
  const rules = RULES[style];
  for (const [key, value] of Object.entries(tags)) {
    const where = `${flag} ${key}=${value}`;
    if (key.length === 0 || key.length > rules.maxKey) throw new TskitError(`${where}: a ${style} tag key is 1 to ${rules.maxKey} characters`);
    if (value.length > rules.maxValue) throw new TskitError(`${where}: a ${style} tag value is at most ${rules.maxValue} characters`);
    if (rules.forbiddenInKey?.test(key)) throw new TskitError(`${where}: ${style} tag names cannot contain < > % & \\ ? /`);
    if (style === 'aws' && /^aws:/i.test(key)) throw new TskitError(`${where}: the aws: prefix is reserved for AWS`);
    if (rules.labels) {
      if (!/^\p{Ll}[\p{Ll}\p{Lo}\p{N}_-]*$/u.test(key)) throw new TskitError(`${where}: a GCE label key starts with a lowercase letter and holds only lowercase letters, digits, _ and -`);
      if (!/^[\p{Ll}\p{Lo}\p{N}_-]*$/u.test(value)) throw new TskitError(`${where}: a GCE label value holds only lowercase letters, digits, _ and -`);
    }
  }
}

export interface StrayFilter {
  runId?: string;
  olderThan?: Date;
}

/**
 * Whether a resource is gc's to remove: tskit made it for a run (it has a run id; `filter.runId`,
 * when given, must match), it is not kept (--keep), and it is older than `filter.olderThan`
 * (by its created tag, else `createdAt` the cloud reports; unknown age counts as old).
 */
export function isStray(tags: TskitTags & {keep: boolean}, filter: StrayFilter, createdAt?: Date | string): boolean {
  if (tags.keep || tags.runId === undefined) return false;
  if (filter.runId !== undefined && tags.runId !== filter.runId) return false;
  return olderThan(tags.created ?? createdAt, filter.olderThan);
}

/** True when `created` is before `limit`, or either is unknown. */
export function olderThan(created: Date | string | undefined, limit: Date | undefined): boolean {
  if (!limit || created === undefined) return true;
  const time = new Date(created).getTime();
  return Number.isNaN(time) || time < limit.getTime();
}
