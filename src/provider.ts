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
   * signal aborts mid-way, removes what it already created and throws.
   */
  run(image: ImageRef, opts: RunOpts, emit: Emit, signal: AbortSignal): Promise<Instance[]>;
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
