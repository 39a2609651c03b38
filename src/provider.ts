// The one interface every place tskit can run an image implements: qemu on this
// machine, and each cloud. Commands only wire a Provider to flags and render its events;
// see docs/providers.md for how each cloud maps onto these calls.
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

export interface Provider<PushOpts = unknown, RunOpts = unknown> {
  readonly name: string;
  /** Formats `push` takes. */
  readonly accepts: readonly string[];
  /** Pre-flight: credentials, region, tools present. Throws TskitError with what to do. */
  check(opts: RunOpts | PushOpts): Promise<void>;
  push(artifact: Artifact, opts: PushOpts, emit: Emit): Promise<PushedImage>;
  run(image: ImageRef, opts: RunOpts, emit: Emit, signal: AbortSignal): Promise<Instance[]>;
  /** The instance's serial console, live, until it stops or the signal aborts. */
  console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** Idempotent: removing something already gone succeeds. */
  destroy(resource: Resource): Promise<void>;
  /** For `tskit gc`: what this provider holds that tskit created. */
  list?(filter: {runId?: string; olderThan?: Date}): AsyncIterable<Resource>;
}
