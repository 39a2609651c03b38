// Journal first: a provider writes down what it is about to create BEFORE the call that
// creates it (by its id when the provider chooses it, else by the idempotency token the call
// carries), and crosses it out after a confirmed delete. A run killed with SIGKILL or a power
// cut then leaves a list `tskit gc` works through. The commands hand providers the shared run
// journal (src/run/run-journal.ts); this is the small interface providers program against.
import type {Resource} from '../provider.ts';

export interface ProviderJournal<R extends Resource = Resource> {
  /** Called before the call that creates `resource` (or right after, when only then its id is known). */
  record(resource: R): Promise<void>;
  /** Called after `resource` is confirmed gone, or handed over (a pushed image is the product, not debris). */
  forget(resource: R): Promise<void>;
  /** Takes over a resource an interrupted earlier process recorded, when this one continues with it. */
  adopt?(resource: R): Promise<void>;
}

/** Records a resource this process continues with, taking it from a dead earlier process's journal when the journal can. */
export async function adoptOrRecord<R extends Resource>(journal: ProviderJournal<R>, resource: R): Promise<void> {
  await (journal.adopt ? journal.adopt(resource) : journal.record(resource));
}

export const noJournal: ProviderJournal<never> & ProviderJournal<Resource> = {
  async record() {},
  async forget() {},
};

export interface JournalFirstOptions<R extends Resource, T> {
  journal: ProviderJournal<R>;
  /**
   * What is recorded before the call: the resource itself when its id is known beforehand
   * (a name tskit chose), else a token resource (kind `<kind>-token`, id the idempotency
   * token the call carries) that `destroy` can find the real thing by.
   */
  before: R;
  create(): Promise<T>;
  /** The resource the answer names, recorded in place of `before` (default: `before` stays). */
  created?(result: T): R;
  /**
   * When the call fails: true keeps `before` in the journal (the create may have happened
   * and only the answer was lost: gc must look), false forgets it. Default: keep it unless the
   * error says the cloud refused the request (an answer arrived).
   */
  keepOnFailure?(error: unknown): boolean;
}

/**
 * Records, creates, then records what was created and forgets the token. If `create`
 * throws, `before` stays recorded when the create may have happened (see keepOnFailure).
 */
export async function journalFirst<R extends Resource, T>(options: JournalFirstOptions<R, T>): Promise<T> {
  const {journal, before} = options;
  await journal.record(before);
  let result: T;
  try {
    result = await options.create();
  } catch (error) {
    if (!(options.keepOnFailure ?? answeredRefusal)(error)) await journal.forget(before);
    throw error;
  }
  const created = options.created?.(result);
  if (created && (created.kind !== before.kind || created.id !== before.id)) {
    await journal.record(created);
    await journal.forget(before);
  }
  return result;
}

/** Default for keepOnFailure: keep unless an HTTP answer in the 4xx range (not 408/429) says the request was refused. */
function answeredRefusal(error: unknown): boolean {
  const e = error as {status?: number; statusCode?: number; code?: number | string; $metadata?: {httpStatusCode?: number}} | undefined;
  const status = e?.$metadata?.httpStatusCode ?? e?.status ?? e?.statusCode ?? (typeof e?.code === 'number' ? e.code : undefined);
  const refused = typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429;
  return !refused;
}
