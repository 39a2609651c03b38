// `tskit run qemu`: boots a kernel+initrd or a disk image in a local qemu (KVM when it really
// works, TCG otherwise) behind the Provider interface every cloud implements. Each instance
// owns one temp dir, named like the instance (tskit-qemu-XXXXXX) and passed to qemu as -name,
// so `destroy` and `list` can find a leftover VM and its files even from another process.
import {rmSync} from 'node:fs';
import {access, constants, mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {connect} from 'node:net';
import {tmpdir} from 'node:os';
import {basename, delimiter, isAbsolute, join, resolve} from 'node:path';
import type {Readable} from 'node:stream';
import type {Emit} from '../../src/events.ts';
import {TskitError} from '../../src/errors.ts';
import type {Artifact, ClusterNetwork, DestroyOptions, ImageRef, Instance, InstanceEnd, Provider, PushedImage, Resource, RunContext} from '../../src/provider.ts';
import {randomSuffix} from '../../src/run/run-id.ts';
import {stateDir} from '../../src/run/state-dir.ts';
import {ClusterSwitch} from './cluster-switch.ts';
import {clusterAddress, clusterMac, cmdlineWords, MAX_CLUSTER_SIZE, NAT_MAC, CLUSTER_SUBNET, seedFiles, type GuestMetadata} from './guest-metadata.ts';
import {defaultCpuModel, kernelCmdline, qemuArgs, type QemuPlan} from './args.ts';
import {prepareDisks} from './disks.ts';
import {writeSeedVolume} from './seed-volume.ts';
import {writeDataIso} from './data-iso.ts';
import {hostNicProblem, instanceMac} from './host-network.ts';
import {aavmfAdvice, ARCH_PROFILES, hostArch} from './arch.ts';
import {findOvmf, ovmfAdvice} from './firmware.ts';
import {bootableFormats, resolveImage} from './image.ts';
import {probeKvm} from './kvm-probe.ts';
import {clusterConflict, type QemuRunOptions} from './options.ts';
import {QemuProcess} from './process.ts';

export type {QemuRunOptions} from './options.ts';
export {clusterConflict, parseDiskSpec, parsePublish, qemuRunOptions, type QemuOptionWords} from './options.ts';

const idPattern = /^tskit-qemu-[A-Za-z0-9]{6}$/;
const networkIdPattern = /^tskit-qemu-net-[A-Za-z0-9]{6}$/;
const qemuAdvice = 'install it (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-utils; Fedora: dnf install qemu-system-x86 qemu-img; macOS: brew install qemu) or set TSKIT_QEMU to its path';

interface LiveVm {
  tempDir: string;
  vm?: QemuProcess;
  stopGraceMs?: number;
}

/** What this process started and has not destroyed yet; emptied by the exit hook if need be. */
const live = new Map<string, LiveVm>();
/** Cluster networks (a switch and its directory) this process holds. */
const networks = new Map<string, {dir: string; switch?: ClusterSwitch}>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the process leaves without teardown (a third Ctrl-C, process.exit, a
  // crash): hooks on 'exit' cannot wait, so kill hard and remove synchronously.
  process.once('exit', () => {
    for (const entry of live.values()) {
      entry.vm?.killNow();
      rmSync(entry.tempDir, {recursive: true, force: true});
    }
    live.clear();
    for (const network of networks.values()) rmSync(network.dir, {recursive: true, force: true});
    networks.clear();
  });
}

export class QemuProvider implements Provider<unknown, QemuRunOptions> {
  readonly name = 'qemu';
  readonly accepts: readonly string[] = bootableFormats;

  async check(options: QemuRunOptions = {}): Promise<void> {
    const qemu = options.qemuBinary ?? defaultQemu(options.arch);
    if (!(await findExecutable(qemu))) throw new TskitError(`qemu: ${qemu} not found; ${qemuAdvice}`, {exitCode: 125});
    const creates = (options.disks ?? []).some((d) => !d.file);
    const named = await Promise.all((options.disks ?? []).filter((d) => d.file).map((d) => stat(d.file!).then(() => true, () => false)));
    if (creates || named.includes(false)) {
      const qemuImg = options.qemuImgBinary ?? 'qemu-img';
      if (!(await findExecutable(qemuImg))) throw new TskitError(`qemu: --disk needs ${qemuImg} to create disks, and it is not found; ${qemuAdvice}`, {exitCode: 125});
    }
    if (options.uefi && !(options.firmware ?? (await findOvmf()))) throw new TskitError(`qemu: --uefi needs OVMF firmware, none found; ${ovmfAdvice}`, {exitCode: 125});
    if (options.firmware && !(await access(options.firmware, constants.R_OK).then(() => true, () => false))) {
      throw new TskitError(`qemu: firmware ${options.firmware} cannot be read`, {exitCode: 125});
    }
    if ((options.publish ?? []).length > 0 && options.networking === 'none') {
      throw new TskitError('qemu: --publish needs networking; drop --networking none', {exitCode: 2});
    }
    if (typeof options.networking === 'object') {
      const problem = await hostNicProblem(options.networking);
      if (problem) throw new TskitError(`qemu: ${problem}`, {exitCode: 125});
    }
  }

  /**
   * qemu boots local files, so there is nothing to upload: the image id is the artifact's
   * absolute path. (Kept so `tskit push qemu` and scripts treat every provider alike.)
   */
  async push(artifact: Artifact): Promise<PushedImage> {
    return {provider: this.name, id: resolve(artifact.path), detail: {format: artifact.format}};
  }

  async run(ref: ImageRef, options: QemuRunOptions, emit: Emit, signal: AbortSignal, context?: RunContext): Promise<Instance[]> {
    const image = await resolveImage(ref.id, options.format);
    const qemu = options.qemuBinary ?? defaultQemu(options.arch);
    const profile = ARCH_PROFILES[options.arch ?? hostArch() ?? 'amd64'];
    const foreign = options.arch !== undefined && options.arch !== hostArch();

    let firmware: string | undefined;
    // arm64's virt machine boots disks and ISOs only through UEFI (there is no SeaBIOS for it)
    if (options.uefi ?? (image.needsUefi || (profile.firmware.length > 0 && image.kind === 'disk'))) {
      firmware = options.firmware ?? (profile.firmware.length > 0 ? await findOvmf(profile.firmware) : await findOvmf());
      if (!firmware) throw new TskitError(`qemu: ${ref.id} needs UEFI (${image.uefiReason ?? (profile.firmware.length > 0 ? `${options.arch} boots disks with UEFI` : '--uefi')}), and no firmware was found; ${profile.firmware.length > 0 ? aavmfAdvice : ovmfAdvice}`, {exitCode: 125});
      if (options.uefi === undefined) emit({type: 'log', level: 'info', message: `booting ${image.name} with UEFI: ${image.uefiReason}`});
    } else if (image.needsUefi) {
      emit({type: 'log', level: 'warn', message: `${ref.id} looks UEFI-only (${image.uefiReason}) but --no-uefi was given`});
    }
    // an image built for x86 names ttyS0; on arm64 the serial port is ttyAMA0, and the last console= wins
    const archCmdline = image.kind === 'kernel+initrd' && profile.console !== 'ttyS0' && !new RegExp(`(^|\\s)console=${profile.console}`).test(kernelCmdline(image, options.cmdline)) ? `console=${profile.console}` : undefined;
    if (image.kind === 'kernel+initrd' && !archCmdline && !new RegExp(`(^|\\s)console=${profile.console}`).test(kernelCmdline(image, options.cmdline))) {
      emit({type: 'log', level: 'warn', message: `the kernel command line has no console=${profile.console}, so the serial console may stay silent (add it with --cmdline console=${profile.console})`});
    }

    const accel = foreign ? 'tcg' : await this.chooseAccel(options, qemu, emit, signal);
    if (foreign && options.accel === 'kvm') throw new TskitError(`qemu: KVM cannot run an ${options.arch} guest on this ${hostArch() ?? process.arch} host; use --accel tcg`, {exitCode: 2});
    signal.throwIfAborted();

    // The id is chosen (and journalled) before the directory exists, so a tskit killed at any
    // point leaves nothing the journal does not name.
    const {id, tempDir} = await createTempDir('tskit-qemu-', async (candidate, dir) => {
      await context?.journal.record({provider: this.name, kind: 'instance', id: candidate, detail: {tempDir: dir}});
    }, async (candidate) => {
      await context?.journal.forget({provider: this.name, kind: 'instance', id: candidate});
    });
    const entry: LiveVm = {tempDir, ...(options.stopGraceMs === undefined ? {} : {stopGraceMs: options.stopGraceMs})};
    installExitHook();
    live.set(id, entry);
    try {
      const disks = await prepareDisks(options.disks ?? [], tempDir, options.qemuImgBinary ?? 'qemu-img', emit);
      const name = context?.name ?? image.name;
      const guest = await this.prepareGuest(name, tempDir, image.kind === 'kernel+initrd', options, emit, context);
      const dataIso = options.data ? await writeDataIso(options.data, tempDir) : undefined;
      const plan: QemuPlan = {
        id,
        image,
        accel,
        cpus: options.cpus ?? 1,
        cpu: options.cpuModel ?? (accel === 'tcg' ? profile.tcgCpu : defaultCpuModel(accel)),
        memMiB: options.memMiB ?? 1024,
        machine: options.machine ?? profile.machine,
        ide: profile.ide,
        ...(firmware ? {firmware} : {}),
        ...(options.cmdline || guest.cmdline || archCmdline ? {extraCmdline: [options.cmdline, guest.cmdline, archCmdline].filter(Boolean).join(' ')} : {}),
        disks,
        networking: options.networking ?? 'user',
        ...(typeof options.networking === 'object' ? {hostNicMac: instanceMac(id)} : {}),
        publish: options.publish ?? [],
        ...guest.plan,
        ...(dataIso ? {dataIso} : {}),
      };
      signal.throwIfAborted();
      entry.vm = await QemuProcess.start({binary: qemu, args: qemuArgs(plan), emit, signal, consoleDir: tempDir});
      await context?.journal.update({provider: this.name, kind: 'instance', id, detail: {tempDir, pid: entry.vm.pid}});
      return [
        {
          provider: this.name,
          id,
          name,
          detail: {
            pid: entry.vm.pid,
            accel,
            firmware: firmware ?? 'seabios',
            machine: plan.machine,
            image: resolve(image.kind === 'disk' ? image.path : image.kernel),
            tempDir,
            ...(guest.address ? {address: guest.address, mac: plan.clusterNic!.mac} : {}),
          },
        },
      ];
    } catch (error) {
      await entry.vm?.stop({graceMs: 0});
      await rm(tempDir, {recursive: true, force: true});
      live.delete(id);
      await context?.journal.forget({provider: this.name, kind: 'instance', id});
      throw error;
    }
  }

  /**
   * A segment the cluster's VMs share (each VM's second NIC), with static addresses: member i
   * is 10.77.0.(10+i)/24. Journalled before its directory exists; `destroy` removes it.
   */
  async createClusterNetwork(size: number, options: QemuRunOptions, emit: Emit, signal: AbortSignal, context: Omit<RunContext, 'cluster' | 'name'>): Promise<ClusterNetwork> {
    if (size > MAX_CLUSTER_SIZE) throw new TskitError(`qemu: a cluster network holds at most ${MAX_CLUSTER_SIZE} instances, not ${size}`, {exitCode: 2});
    const conflict = clusterConflict(options, size);
    if (conflict) throw new TskitError(`qemu: ${conflict}`, {exitCode: 2});
    signal.throwIfAborted();
    const {id, tempDir} = await createTempDir('tskit-qemu-net-', async (candidate, dir) => {
      await context.journal.record({provider: this.name, kind: 'network', id: candidate, detail: {dir}});
    }, async (candidate) => {
      await context.journal.forget({provider: this.name, kind: 'network', id: candidate});
    });
    const socket = join(tempDir, 'switch.sock');
    installExitHook();
    networks.set(id, {dir: tempDir});
    try {
      const sw = await ClusterSwitch.listen(socket);
      networks.set(id, {dir: tempDir, switch: sw});
    } catch (error) {
      await rm(tempDir, {recursive: true, force: true});
      networks.delete(id);
      await context.journal.forget({provider: this.name, kind: 'network', id});
      throw new TskitError(`qemu: cannot start the cluster switch on ${socket}: ${(error as Error).message}`, {exitCode: 125});
    }
    const addresses = Array.from({length: size}, (_, i) => `${clusterAddress(i)}/${CLUSTER_SUBNET.prefix}`);
    emit({type: 'log', level: 'debug', message: `cluster network ${id}: switch on ${socket}, ${addresses[0]} to ${addresses.at(-1)}`});
    return {provider: this.name, kind: 'network', id, runId: context.runId, addresses, detail: {dir: tempDir, socket}};
  }

  /** The guest's metadata (cluster place, addresses, user data) as qemu options and files. */
  private async prepareGuest(name: string, tempDir: string, kernelBoot: boolean, options: QemuRunOptions, emit: Emit, context: RunContext | undefined): Promise<{plan: Partial<QemuPlan>; cmdline?: string; address?: string}> {
    if (!context || (!context.cluster && context.userData === undefined)) return {plan: {}};
    const index = context.cluster?.index ?? 0;
    const network = context.cluster?.network;
    const withNat = (options.networking ?? 'user') === 'user';
    const meta: GuestMetadata = {
      runId: context.runId,
      name,
      index,
      count: context.cluster?.size ?? 1,
      ...(network ? {network: {address: network.addresses[index]!, mac: clusterMac(index), peers: network.addresses.map((a) => a.split('/')[0]!)}} : {}),
      ...(network && withNat ? {natMac: NAT_MAC} : {}),
    };
    const seedDir = join(tempDir, 'seed');
    await mkdir(seedDir);
    const files = seedFiles(meta, context.userData);
    for (const [file, content] of Object.entries(files)) await writeFile(join(seedDir, file), content, {mode: 0o600});
    const seedImage = join(tempDir, 'seed.img');
    await writeSeedVolume(seedImage, {...files}, Math.floor(Date.now() / 1000));
    const plan: Partial<QemuPlan> = {
      seedImage,
      fwCfg: [
        {name: 'opt/tskit/metadata.json', file: join(seedDir, 'tskit.json')},
        {name: 'opt/tskit/user-data', file: join(seedDir, 'user-data')},
      ],
      ...(network ? {clusterNic: {socket: String(network.detail?.socket), mac: clusterMac(index)}} : {}),
      ...(network && withNat ? {natMac: NAT_MAC} : {}),
    };
    let cmdline: string | undefined;
    if (kernelBoot) {
      const words = cmdlineWords(meta);
      if (words.omitted) emit({type: 'log', level: 'warn', message: `${name}: ${words.omitted}`});
      cmdline = words.words.join(' ');
    }
    return {plan, ...(cmdline ? {cmdline} : {}), ...(meta.network ? {address: meta.network.address} : {})};
  }

  console(instance: Instance, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const vm = this.vmOf(instance);
    return readableChunks(vm.console, signal);
  }

  async wait(instance: Instance, signal: AbortSignal): Promise<InstanceEnd> {
    const vm = this.vmOf(instance);
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([vm.ended, new Promise<never>((_, reject) => signal.addEventListener('abort', (onAbort = () => reject(signal.reason)), {once: true}))]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Stops the VM (QMP quit, SIGTERM, SIGKILL; at once when hurried) and removes its temp dir;
   * closes a cluster network's switch and removes its directory. Idempotent. Works from another
   * process too (`tskit gc`): the qemu is found by its -name, the directory by the id.
   */
  async destroy(resource: Resource, options: DestroyOptions = {}): Promise<void> {
    if (resource.kind === 'network') return this.destroyNetwork(resource);
    const entry = live.get(resource.id);
    if (entry) {
      try {
        await entry.vm?.stop({...(entry.stopGraceMs === undefined ? {} : {graceMs: entry.stopGraceMs}), ...(options.hurry ? {hurry: options.hurry} : {})});
      } finally {
        await rm(entry.tempDir, {recursive: true, force: true});
        live.delete(resource.id);
      }
      return;
    }
    // Not ours: a leftover from a tskit that died (for `tskit gc`). Match the exact id only.
    if (!idPattern.test(resource.id)) throw new TskitError(`qemu: "${resource.id}" is not a tskit qemu instance id`);
    for (const pid of await qemuPidsFor(resource.id)) await killPid(pid, options.hurry);
    await rm(leftoverDir(resource, 'tempDir'), {recursive: true, force: true});
  }

  private async destroyNetwork(resource: Resource): Promise<void> {
    const held = networks.get(resource.id);
    if (held) {
      try {
        await held.switch?.close();
      } finally {
        await rm(held.dir, {recursive: true, force: true});
        networks.delete(resource.id);
      }
      return;
    }
    if (!networkIdPattern.test(resource.id)) throw new TskitError(`qemu: "${resource.id}" is not a tskit qemu network id`);
    const dir = leftoverDir(resource, 'dir');
    if (await switchAnswers(join(dir, 'switch.sock'))) throw new TskitError(`qemu: network ${resource.id} is still in use (its switch answers)`);
    await rm(dir, {recursive: true, force: true});
  }

  /** Leftovers of tskit runs whose tskit is gone: orphaned qemu processes, temp dirs, cluster network dirs. */
  async *list(filter: {runId?: string; olderThan?: Date} = {}): AsyncIterable<Resource> {
    const running = await runningTskitQemus();
    const names = new Set<string>(running.filter((p) => p.orphaned).map((p) => p.id));
    const busy = new Set(running.filter((p) => !p.orphaned).map((p) => p.id));
    const processStarted = new Map(running.flatMap((p) => (p.started ? [[p.id, p.started] as const] : [])));
    const entries = await readdir(tmpdir()).catch(() => [] as string[]);
    for (const entry of entries) {
      if (idPattern.test(entry) && !busy.has(entry)) names.add(entry);
    }
    for (const id of names) {
      if (live.has(id)) continue;
      // The temp dir's time, else (another TMPDIR) the orphaned process's start.
      const created = (await stat(join(tmpdir(), id)).then((s) => s.mtime, () => undefined)) ?? processStarted.get(id);
      if (filter.olderThan && (!created || created > filter.olderThan)) continue;
      yield {provider: this.name, kind: 'instance', id, ...(created ? {createdAt: created.toISOString()} : {})};
    }
    for (const id of entries.filter((e) => networkIdPattern.test(e))) {
      if (networks.has(id)) continue;
      const dir = join(tmpdir(), id);
      if (await switchAnswers(join(dir, 'switch.sock'))) continue;
      const created = await stat(dir).then((s) => s.mtime, () => undefined);
      if (filter.olderThan && created && created > filter.olderThan) continue;
      yield {provider: this.name, kind: 'network', id, detail: {dir}, ...(created ? {createdAt: created.toISOString()} : {})};
    }
  }

  private vmOf(instance: Instance): QemuProcess {
    const vm = live.get(instance.id)?.vm;
    if (!vm) throw new TskitError(`qemu: no running instance ${instance.id} in this process`);
    return vm;
  }

  private async chooseAccel(options: QemuRunOptions, qemu: string, emit: Emit, signal: AbortSignal): Promise<'kvm' | 'tcg'> {
    const accel = options.accel ?? 'auto';
    if (accel !== 'auto') return accel;
    const probe = await probeKvm({qemu, stateDir: options.stateDir ?? stateDir(), signal});
    emit({type: 'log', level: 'debug', message: `accelerator: ${probe.usable ? 'kvm' : 'tcg'} (${probe.reason}${probe.cached ? ', cached for this boot' : ''})`});
    return probe.usable ? 'kvm' : 'tcg';
  }
}

export const qemuProvider = new QemuProvider();

export function defaultQemu(arch?: 'amd64' | 'arm64'): string {
  if (arch && arch !== 'amd64') return ARCH_PROFILES[arch].qemu;
  return process.env.TSKIT_QEMU || 'qemu-system-x86_64';
}

/**
 * The console as chunks, ending when qemu closes it or the signal aborts. Buffers at most a
 * little: past 64 chunks the stream is paused, and qemu's serial waits for us.
 */
async function* readableChunks(stream: Readable, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const queue: Buffer[] = [];
  let ended = stream.readableEnded;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    if (queue.length > 64) stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (error: Error): void => {
    failure = error;
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onEnd);
  stream.on('error', onError);
  signal.addEventListener('abort', notify);
  try {
    for (;;) {
      if (signal.aborted) return;
      const chunk = queue.shift();
      if (chunk) {
        if (queue.length < 16 && stream.isPaused()) stream.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onEnd);
    stream.off('error', onError);
    signal.removeEventListener('abort', notify);
  }
}

/**
 * Makes a private (0700) directory `TMPDIR/PREFIX + 6 letters`, calling `before` with the
 * chosen id and path first (to journal it) and `abandon` if that name was taken after all.
 */
async function createTempDir(prefix: string, before: (id: string, dir: string) => Promise<void>, abandon: (id: string) => Promise<void>): Promise<{id: string; tempDir: string}> {
  for (let attempt = 0; ; attempt++) {
    const id = `${prefix}${randomSuffix(6)}`;
    const tempDir = join(tmpdir(), id);
    await before(id, tempDir);
    try {
      await mkdir(tempDir, {mode: 0o700});
      return {id, tempDir};
    } catch (error) {
      await abandon(id);
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 10) throw new TskitError(`qemu: cannot create ${tempDir}: ${(error as Error).message}`, {exitCode: 125});
    }
  }
}

/**
 * Where a leftover's directory is: the journal's record of it when that names the same id
 * (the run may have had another TMPDIR), else TMPDIR/ID. Never anything else, whatever a
 * journal says.
 */
function leftoverDir(resource: Resource, field: 'tempDir' | 'dir'): string {
  const recorded = resource.detail?.[field];
  if (typeof recorded === 'string' && isAbsolute(recorded) && basename(recorded) === resource.id) return recorded;
  return join(tmpdir(), resource.id);
}

/** True when something listens on the switch socket (its tskit still runs). */
function switchAnswers(path: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

async function findExecutable(name: string): Promise<string | undefined> {
  const candidates = isAbsolute(name) || name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const path of candidates) {
    if (await access(path, constants.X_OK).then(() => true, () => false)) return path;
  }
  return undefined;
}

interface TskitQemu {
  pid: number;
  id: string;
  /** Its tskit is gone (re-parented away from it). */
  orphaned: boolean;
  /** When the process started (from /proc/PID/stat and the boot time), if known. */
  started?: Date;
}

async function runningTskitQemus(): Promise<TskitQemu[]> {
  const found: TskitQemu[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').then((t) => t.split('\0'), () => [] as string[]);
    const nameAt = argv.indexOf('-name');
    const id = nameAt >= 0 ? argv[nameAt + 1]?.split(',')[0] : undefined;
    if (!id || !idPattern.test(id) || !/qemu-system/.test(argv[0] ?? '')) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const parent = ppid > 1 ? await readFile(`/proc/${ppid}/cmdline`, 'utf8').catch(() => '') : '';
    found.push({pid: Number(entry), id, orphaned: ppid <= 1 || !/node|tskit/.test(parent), ...(await processStart(Number(entry)).then((started) => (started ? {started} : {})))});
  }
  return found;
}

/** A process's start time: boot time (/proc/stat btime) plus its start in clock ticks (USER_HZ, 100 on Linux). */
async function processStart(pid: number): Promise<Date | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const btime = Number(/^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8').catch(() => ''))?.[1]);
  return Number.isFinite(ticks) && btime > 0 ? new Date((btime + ticks / 100) * 1000) : undefined;
}

async function qemuPidsFor(id: string): Promise<number[]> {
  return (await runningTskitQemus()).filter((p) => p.id === id).map((p) => p.pid);
}

async function killPid(pid: number, hurry?: AbortSignal): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const send = (signal: NodeJS.Signals): void => {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  };
  if (!hurry?.aborted) {
    send('SIGTERM');
    for (let i = 0; i < 30 && alive() && !hurry?.aborted; i++) await new Promise((r) => setTimeout(r, 100));
  }
  if (alive()) send('SIGKILL');
  for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
}
