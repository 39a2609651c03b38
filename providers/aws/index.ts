// The AWS provider: push (raw/VMDK → snapshot → AMI), run (EC2 instances with their serial
// console), destroy and list for teardown and `tskit gc aws`. The SDK is loaded on first use
// (sdk.ts); importing this module costs nothing.
import {TskitError} from '../../src/errors.ts';
import type {Emit} from '../../src/events.ts';
import type {Artifact, ClusterNetwork, DestroyOptions, ImageRef, Instance, InstanceEnd, Provider, PushedImage, Resource, RunContext} from '../../src/provider.ts';
import {userDataWithMetadata} from '../../src/run/guest-metadata.ts';
import {createClusterInterfaces, type AwsNetworkDetail} from './cluster-network.ts';
import {awsError, errorCode} from './errors.ts';
import {consoleStream, launch, waitForEnd, type AwsRunOptions, type Watch} from './instances.ts';
import {newRunId} from '../../src/run/run-id.ts';
import {proveCredentials} from '../../src/provider-kit/check.ts';
import awsEntry from './provider.ts';
import {noJournal, type AwsJournal, type AwsResource} from './journal.ts';
import {pushToAws, type AwsPushOptions, type AwsPushResult} from './push.ts';
import {destroyResource, listStrays, type ListFilter} from './resources.ts';
import {retryPolicyFromEnv} from './retry.ts';
import {createClients, isKnownRegion, type AwsClientOptions, type AwsClients} from './sdk.ts';
import {UploadStateStore} from './upload-state.ts';

export type {AwsPushOptions, AwsPushResult} from './push.ts';
export {diskFileFormat} from './push.ts';
export type {AwsRunOptions} from './instances.ts';
export type {AwsJournal, AwsResource} from './journal.ts';
export {noJournal} from './journal.ts';
export type {Architecture, BootMode} from './images.ts';

export interface AwsProviderOptions {
  /** Where created resources are written down before the call that creates them. */
  journal?: AwsJournal;
  /** Where interrupted uploads are continued from. */
  uploadState?: UploadStateStore;
  /** SDK client settings (region override, timeouts, retry policy). */
  client?: AwsClientOptions;
}

export class AwsProvider implements Provider<AwsPushOptions, AwsRunOptions> {
  readonly name = 'aws';
  readonly accepts: readonly string[] = awsEntry.formats;
  readonly journal: AwsJournal;
  private readonly uploadState: UploadStateStore;
  private readonly clientOptions: AwsClientOptions;
  private readonly clientsByRegion = new Map<string, Promise<AwsClients>>();
  private readonly watches = new Map<string, Watch>();
  private runOptions: AwsRunOptions = {};
  private runId: string | undefined;
  /** The run's journal (from the run loop) while a run is on; the provider's own otherwise. */
  private runJournal: AwsJournal | undefined;

  private get activeJournal(): AwsJournal {
    return this.runJournal ?? this.journal;
  }

  constructor(options: AwsProviderOptions = {}) {
    this.journal = options.journal ?? noJournal;
    this.uploadState = options.uploadState ?? new UploadStateStore();
    this.clientOptions = options.client ?? {};
  }

  /** The SDK clients for `region` (default: the chain's). */
  clients(region?: string): Promise<AwsClients> {
    const key = region ?? '';
    let clients = this.clientsByRegion.get(key);
    if (!clients) {
      clients = createClients({...this.clientOptions, ...(region ? {region} : {})}).catch((error: unknown) => {
        this.clientsByRegion.delete(key);
        throw awsError(error, 'configuration');
      });
      this.clientsByRegion.set(key, clients);
    }
    return clients;
  }

  /** Region known to EC2 and credentials that work, before anything is created. */
  async check(_opts?: unknown): Promise<void> {
    const clients = await this.clients(this.clientOptions.region);
    const region = clients.region;
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new TskitError(`unknown AWS region ${JSON.stringify(region)}: set AWS_REGION to one such as us-east-1`);
    // A region this SDK does not know may still be new: ask it once, without the retry budget
    // (a region that does not exist does not answer, or answers nonsense).
    const known = await isKnownRegion(region);
    const asked = known ? clients : await createClients({...this.clientOptions, region, retry: {...retryPolicyFromEnv(), maxAttempts: 1}});
    let regions: string[] = [];
    try {
      const proof = await proveCredentials({
        call: async () => {
          const answer = await asked.ec2.send(new asked.sdk.ec2.DescribeRegionsCommand({AllRegions: true}));
          regions = (answer.Regions ?? []).map((r) => r.RegionName ?? '');
        },
        // A policy without ec2:DescribeRegions still proves the credentials: AWS checked the
        // signature before it said no. Pushing and running need no such permission.
        deniedStillProves: (error) => known && ['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException'].includes(errorCode(error)),
        explain: (error) => {
          const mapped = awsError(error, 'DescribeRegions');
          if (known || /credentials|refused/i.test(mapped.message)) return mapped;
          return new TskitError(`unknown AWS region ${region}: set AWS_REGION to one such as us-east-1 (${region} did not answer: ${mapped.message.replace(/^AWS /, '')})`);
        },
      });
      if (proof === 'denied') return;
    } finally {
      if (asked !== clients) asked.destroy();
    }
    if (regions.length > 0 && !regions.includes(region)) throw new TskitError(`unknown AWS region ${region}: set AWS_REGION to one of ${regions.slice(0, 6).join(', ')}, ...`);
  }

  async push(artifact: Artifact, opts: AwsPushOptions, emit: Emit): Promise<PushedImage & {detail: AwsPushResult & Record<string, unknown>}> {
    if (artifact.format && !(this.accepts as readonly string[]).includes(artifact.format) && artifact.format !== 'raw') throw new TskitError(`${artifact.path}: tskit push aws takes ${this.accepts.join(', ')} images, not ${artifact.format}`);
    const clients = await this.clients(this.clientOptions.region);
    const result = await pushToAws(artifact.path, opts, {clients, journal: this.journal, state: this.uploadState, emit});
    return {provider: 'aws', id: result.imageId, detail: {...result}};
  }

  async run(image: ImageRef, opts: AwsRunOptions, emit: Emit, signal: AbortSignal, context?: RunContext): Promise<Instance[]> {
    const clients = await this.clients(this.clientOptions.region);
    this.runOptions = opts;
    this.lastEmit = emit;
    // The run loop's journal and run id, so `tskit gc` finds what a killed run made.
    this.runJournal = context?.journal;
    this.runId = context?.runId ?? opts.runId ?? newRunId();
    // each instance of a cluster is its own RunInstances call: its own idempotency token
    const index = context?.cluster?.index;
    const network = context?.cluster?.network?.detail as AwsNetworkDetail | undefined;
    const own = index === undefined ? undefined : network?.interfaces[index];
    const slot = {
      clientToken: index === undefined ? this.runId : `${this.runId}-${index}`,
      ...(context?.name ? {name: context.name} : {}),
      ...(index === undefined ? {} : {index}),
      ...(own ? {networkInterface: own.id} : {}),
    };
    // A cluster's facts in LinuxKit's metadata form, beside the user's own metadata JSON (other user data goes as given).
    const userData = context?.cluster && index !== undefined
      ? userDataWithMetadata(context.userData, {
          runId: this.runId,
          name: context.name ?? `${this.runId}-${index}`,
          index,
          count: context.cluster.size,
          ...(own && network ? {network: {address: context.cluster.network!.addresses[index]!, mac: own.mac, peers: network.interfaces.map((i) => i.address)}} : {}),
        })
      : context?.userData;
    const options = userData === undefined ? opts : {...opts, userData};
    const instances = await launch(clients, image.id, options, this.runId, slot, this.activeJournal, emit, signal);
    for (const instance of instances) this.watches.set(instance.id, {stopped: false});
    if (signal.aborted) {
      await Promise.allSettled(instances.map((i) => this.destroy({provider: 'aws', kind: 'instance', id: i.id, runId: this.runId!}, {})));
      throw signal.reason;
    }
    return instances;
  }

  /**
   * One interface per member in one subnet (--subnet, else the default VPC's first default
   * subnet), made before any instance, so each member's user data can list every address.
   */
  async createClusterNetwork(size: number, opts: AwsRunOptions, emit: Emit, signal: AbortSignal, context: Omit<RunContext, 'cluster' | 'name'>): Promise<ClusterNetwork> {
    const clients = await this.clients(this.clientOptions.region);
    this.runOptions = opts;
    this.runJournal = context.journal;
    this.runId = context.runId;
    return createClusterInterfaces(clients, size, opts, context.runId, this.activeJournal, emit, signal);
  }

  console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const clients = this.clients(this.clientOptions.region);
    const watch = this.watchOf(instance.id);
    const pollMs = this.runOptions.pollMs ?? 2000;
    const self = this;
    return (async function* () {
      yield* consoleStream(await clients, instance.id, pollMs, watch, (event) => self.lastEmit?.(event), signal);
    })();
  }

  async wait(instance: Instance, signal: AbortSignal): Promise<InstanceEnd> {
    const clients = await this.clients(this.clientOptions.region);
    return waitForEnd(clients, instance.id, Math.max(this.runOptions.pollMs ?? 2000, 1000), this.watchOf(instance.id), signal);
  }

  async destroy(resource: Resource, options: DestroyOptions = {}): Promise<void> {
    const aws = resource as AwsResource;
    if (resource.kind === 'instance' && this.runOptions.keep && this.watches.has(resource.id)) {
      this.lastEmit?.({type: 'log', level: 'info', message: `kept ${resource.id} (--keep); remove it with: aws ec2 terminate-instances --instance-ids ${resource.id}`});
      await this.activeJournal.forget({provider: 'aws', kind: 'instance', id: resource.id, region: (await this.clients(this.clientOptions.region)).region, ...(this.runId ? {runId: this.runId} : {})});
      return;
    }
    if (resource.kind === 'network' && this.runOptions.keep && resource.runId === this.runId) {
      // the kept instances still use its interfaces (tagged tskit:keep, so gc leaves them too)
      this.lastEmit?.({type: 'log', level: 'info', message: `kept the cluster's network interfaces (--keep; tagged tskit:network=${resource.id})`});
      await this.activeJournal.forget({...aws, provider: 'aws'});
      return;
    }
    const clients = await this.clients(aws.region ?? this.clientOptions.region);
    const runId = resource.runId ?? (this.watches.has(resource.id) ? this.runId : undefined);
    const full: AwsResource = {...aws, provider: 'aws', region: clients.region, ...(runId ? {runId} : {})};
    await destroyResource(clients, full, true, options.hurry);
    await this.activeJournal.forget(full);
    this.lastEmit?.({type: 'resource.destroyed', provider: 'aws', kind: full.kind, id: full.id, ...(full.runId ? {runId: full.runId} : {})});
  }

  async *list(filter: ListFilter = {}): AsyncIterable<Resource> {
    const clients = await this.clients(this.clientOptions.region);
    try {
      yield* listStrays(clients, filter);
    } catch (error) {
      throw awsError(error, 'list');
    }
  }

  /** For remarks from console polling (a gap in the output); the command sets it. */
  lastEmit: Emit | undefined;

  /** Closes the SDK clients' sockets so the process can exit. */
  async close(): Promise<void> {
    for (const clients of this.clientsByRegion.values()) (await clients.catch(() => undefined))?.destroy();
    this.clientsByRegion.clear();
  }

  private watchOf(id: string): Watch {
    let watch = this.watches.get(id);
    if (!watch) {
      watch = {stopped: false};
      this.watches.set(id, watch);
    }
    return watch;
  }
}
