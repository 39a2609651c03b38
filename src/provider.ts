// The one interface every place tskit can run an image implements: qemu on this
// machine, and each cloud. Commands only wire a Provider to flags and render its events;
// see docs/providers.md for each call's contract and how each cloud maps onto them. The run
// loop shared by every `tskit run <provider>` is src/run/session.ts.
import type {Emit} from './events.ts';

/** A file tskit built, with the format it is in (kernel+initrd is a prefix of three files). */
export interface Artifact {
  path: string;
  format: string;
}

/** Something a provider can boot: an image id in a cloud, or a local artifact path for qemu. */
export interface ImageRef {
  provider: string;
  id: string;
}

export interface Instance {
  provider: string;
  id: string;
  /** Human-readable name used to prefix console lines. */
  name: string;
  /** Provider-specific details (pid, addresses, ...). */
  detail?: Record<string, unknown>;
}

/** A thing a provider created that must be removed at teardown. */
export interface Resource {
  provider: string;
  kind: string;
  id: string;
  runId?: string;
  createdAt?: string;
  /** What `destroy` needs beyond the id to find it again from another process (qemu: its temp dir, pid). */
  detail?: Record<string, unknown>;
}

/**
 * The run journal as providers see it (src/run/run-journal.ts): an append-only, fsync'd record
 * of what a run created, so `tskit gc` can remove it after tskit itself was killed.
 */
export interface ResourceJournal {
  /** Call BEFORE creating the resource (a crash between the two leaves an entry gc finds gone: fine). */
  record(resource: Resource): Promise<void>;
  /** Adds what was learnt on creation (a pid, a cloud id); same provider, kind and id. */
  update(resource: Resource): Promise<void>;
  /** Call after a confirmed delete. Whoever called `destroy` forgets what it passed. */
  forget(resource: Resource): Promise<void>;
}

/** The shared network of a cluster, from `Provider.createClusterNetwork`. */
export interface ClusterNetwork extends Resource {
  kind: 'network';
  /** Each member's address on it, by index, in CIDR form (10.77.0.10/24). */
  addresses: string[];
}

/** Where an instance stands in its cluster (`tskit run --count N`). */
export interface ClusterMember {
  /** 0-based, stable: instance names end in it and the guest is told it. */
  index: number;
  size: number;
  /** Absent when the provider has no cluster network (members find each other some other way). */
  network?: ClusterNetwork;
}

/** What the run loop tells `Provider.run` beyond the image and the provider's own options. */
export interface RunContext {
  /** Tag or label everything created with it (clouds: `tskit:run-id`). */
  runId: string;
  journal: ResourceJournal;
  /** The name to give the instance (console prefix, JUnit test case); the provider picks one when absent. */
  name?: string;
  cluster?: ClusterMember;
  /** User data for the guest (cloud-init / LinuxKit metadata); the provider adds its own metadata beside it. */
  userData?: string;
}

export interface PushedImage extends ImageRef {
  detail?: Record<string, unknown>;
}

/**
 * How an instance stopped on its own, as `wait` reports it. The run loop (src/run/session.ts)
 * turns this into a verdict and exit code: poweroff is success, the rest are failures.
 */
export interface InstanceEnd {
  /**
   * poweroff: the guest shut itself down. reboot: the guest reset (a reboot, a triple fault,
   * or a panic with `panic=N`); tskit never lets a guest come back up. panic: the platform saw
   * a guest panic (pvpanic, a cloud's crash report). stopped: something outside the guest stopped
   * it (a user, the cloud). error: the hypervisor or the cloud failed.
   */
  state: 'poweroff' | 'reboot' | 'panic' | 'stopped' | 'error';
  /** One line for humans: "guest powered off", "qemu exited with status 1: ...". */
  detail: string;
}

export interface DestroyOptions {
  /** Aborted when the user asks a second time: stop waiting for a clean stop, kill now. */
  hurry?: AbortSignal;
}

/** The resource that stands for a running instance, for `destroy`. */
export function instanceResource(instance: Instance): Resource {
  return {provider: instance.provider, kind: 'instance', id: instance.id};
}

export interface Provider<PushOpts = unknown, RunOpts = unknown> {
  readonly name: string;
  /** Formats `push` takes. */
  readonly accepts: readonly string[];
  /** Pre-flight: credentials, region, tools present. Throws TskitError with what to do. */
  check(opts: RunOpts | PushOpts): Promise<void>;
  push(artifact: Artifact, opts: PushOpts, emit: Emit): Promise<PushedImage>;
  /**
   * Starts instances and returns as soon as they exist (not when they have booted). When the
   * signal aborts mid-way, removes what it already created and throws. With a context, every
   * resource is recorded in `context.journal` before it is created; the run loop calls `run`
   * once per cluster member.
   */
  run(image: ImageRef, opts: RunOpts, emit: Emit, signal: AbortSignal, context?: RunContext): Promise<Instance[]>;
  /**
   * Optional: creates the network a cluster's members share (journalled like any resource),
   * before any member starts; `destroy` removes it after the members. Members get it in
   * `context.cluster.network`.
   */
  createClusterNetwork?(size: number, opts: RunOpts, emit: Emit, signal: AbortSignal, context: Omit<RunContext, 'cluster' | 'name'>): Promise<ClusterNetwork>;
  /**
   * The instance's serial console, live, until it stops or the signal aborts. One reader per
   * instance: the stream starts at the first byte the guest wrote and is not replayed.
   */
  console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /**
   * Optional: resolves when the instance stops on its own, saying how. Without it the run loop
   * takes the end of the console stream as the end of the instance. Rejects (AbortError) when
   * the signal aborts first.
   */
  wait?(instance: Instance, signal: AbortSignal): Promise<InstanceEnd>;
  /** Idempotent: removing something already gone succeeds. */
  destroy(resource: Resource, options?: DestroyOptions): Promise<void>;
  /** For `tskit gc`: what this provider holds that tskit created. */
  list?(filter: {runId?: string; olderThan?: Date}): AsyncIterable<Resource>;
}
