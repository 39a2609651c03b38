// Library code never prints: it reports what happens through these events, and the
// command layer renders them (progress bars, prefixed console lines, or NDJSON with --json).
// Tests subscribe to the same events. Add new kinds here rather than printing.

export type TskitEvent =
  | {type: 'log'; level: 'debug' | 'info' | 'warn'; message: string}
  /** Long work: `done` of `total` units; `total` is absent while unknown. */
  | {type: 'progress'; task: string; done: number; total?: number; unit: 'bytes' | 'items'}
  | {type: 'image.resolved'; ref: string; digest: string; platform: string; fromCache: boolean}
  | {type: 'blob.fetched'; ref: string; digest: string; size: number}
  | {type: 'artifact.written'; path: string; format: string; size: number; sha256: string}
  /** `runId` names the run in the journal and cloud tags; `index` is the instance's place in a cluster (--count > 1). */
  | {type: 'instance.created'; instance: string; provider: string; runId?: string; index?: number; detail?: Record<string, unknown>}
  | {type: 'console'; instance: string; data: string}
  | {type: 'matched'; instance: string; pattern: string; line: string}
  | {type: 'verdict'; instance: string; verdict: Verdict; exitCode: number; reason: string; index?: number}
  /** With --count > 1, after every instance's verdict and teardown: the cluster passes when at least `minPass` instances did. */
  /** `tskit test`: one per run of the manifest (a test for one image, provider and count), after its teardown. */
  | {type: 'test.result'; test: string; provider: string; image: string; count: number; passed: number; minPass: number; exitCode: number; reason: string; runId?: string; durationMs: number}
  | {type: 'cluster.verdict'; runId: string; verdict: 'passed' | 'failed' | 'interrupted'; passed: number; count: number; minPass: number; exitCode: number; reason: string}
  | {type: 'instance.destroyed'; instance: string; provider: string}
  | {type: 'resource.created'; provider: string; kind: string; id: string; runId?: string}
  | {type: 'resource.destroyed'; provider: string; kind: string; id: string; runId?: string};

export type Verdict = 'matched' | 'failed-marker' | 'timeout' | 'exited' | 'panic' | 'provider-error' | 'interrupted';

export type Emit = (event: TskitEvent) => void;

/** For library calls whose caller does not care about events. */
export const ignoreEvents: Emit = () => {};
