// The OCI runtime bundle files LinuxKit writes for each onboot, onshutdown and service
// container: config.json (runtime-spec 1.2.1, from moby.ConfigToOCI) and runtime.json
// (moby.Runtime, read by LinuxKit's init). The value for each field comes from the YAML entry,
// else from the image's org.mobyproject.config label, else from the image config (command,
// env, cwd) or LinuxKit's default, exactly as LinuxKit v1.8.2 decides, with one fix (below).
import {posix} from 'node:path';
import {TskitError} from '../errors.ts';
import {ALL_CAPABILITIES, capabilityKeyword, isKnownCapability} from '../config/capabilities.ts';
import {idNumeric} from '../config/ids.ts';
import {parseOctalMode, parseRlimit, resolveMount} from '../config/semantic.ts';
import type {
  DeviceConfig,
  GoInteger,
  IDMapping,
  ImageConfigFields,
  ImageEntry,
  MountConfig,
  NamespacesConfig,
  RuntimeConfig,
  VolumeConfig,
} from '../config/types.ts';
import type {ContainerConfig} from '../oci/types.ts';
import {formatPath} from '../config/schema.ts';
import {LABEL, parseImageLabel} from './oci-spec-label.ts';

export {formatSpecJson, formatRuntimeJson} from './oci-spec-json.ts';

/** runtime-spec's specs.Version in LinuxKit v1.8.2's vendored runtime-spec (v1.2.1). */
export const OCI_VERSION = '1.2.1';

/** Where LinuxKit's init mounts a volume for containers (volume.go, const.go). */
export function volumeMergedDir(name: string): string {
  return posix.join('/containers/volumes', name, 'merged');
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciRlimit {
  type: string;
  hard: bigint;
  soft: bigint;
}

export interface OciDevice {
  path: string;
  type: string;
  major: GoInteger;
  minor: GoInteger;
  fileMode: number;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: GoInteger;
  minor?: GoInteger;
  access?: string;
}

/** The LinuxResources fields LinuxKit can set (the YAML names, as the model holds them). */
export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: Record<string, GoInteger>;
  cpu?: Record<string, GoInteger | string>;
  pids?: {limit?: GoInteger};
  blockio?: {weight?: GoInteger};
  network?: {priorities?: Array<{name?: string; priority?: GoInteger}>};
}

/** The subset of runtime-spec's Spec that LinuxKit fills in; empty values are omitted on output. */
export interface OciSpec {
  ociVersion: string;
  process: {
    user: {uid: number; gid: number; additionalGids: number[]};
    args: string[];
    env: string[];
    cwd: string;
    capabilities: {bounding: string[]; effective: string[]; inheritable: string[]; permitted: string[]; ambient: string[]};
    rlimits: OciRlimit[];
    noNewPrivileges: boolean;
    oomScoreAdj?: GoInteger;
  };
  root: {path: string; readonly: boolean};
  hostname: string;
  mounts: OciMount[];
  annotations: Record<string, string>;
  linux: {
    uidMappings: IDMapping[];
    gidMappings: IDMapping[];
    sysctl: Record<string, string>;
    resources: OciResources;
    cgroupsPath: string;
    namespaces: Array<{type: string; path?: string}>;
    devices: OciDevice[];
    rootfsPropagation: string;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

/** runtime.json: every field is set by bundleConfig; the build prepends the rootfs mounts. */
export interface BundleRuntime {
  cgroups?: string[];
  mounts?: MountConfig[];
  mkdir?: string[];
  interfaces?: RuntimeConfig['interfaces'];
  bindNS?: NamespacesConfig;
  namespace?: string;
}

export interface BundleConfig {
  spec: OciSpec;
  runtime: BundleRuntime;
  /** The root filesystem is mounted read-only (LinuxKit then unpacks into rootfs/ directly). */
  readonly: boolean;
}

export interface BundleContext {
  /** Container name -> uid/gid (config/ids.ts containerIdMap). */
  idMap: Map<string, number>;
  /** Every volume of the (merged) config. */
  volumes: VolumeConfig[];
}

/**
 * A bundle config that cannot be made. `field` is the path of the offending value inside the
 * image entry (e.g. ['binds', 1]), or inside the image's label when `fromLabel`; with the
 * entry's own path (['onboot', 0]) LoadedConfig.positionOf turns it into file:line:col.
 */
export class BundleConfigError extends TskitError {
  readonly field: Array<string | number>;
  readonly fromLabel: boolean;

  constructor(message: string, field: Array<string | number>, fromLabel: boolean) {
    super(message);
    this.name = 'BundleConfigError';
    this.field = field;
    this.fromLabel = fromLabel;
  }
}

type Fail = (field: Array<string | number>, message: string, fromLabel?: boolean) => never;

/**
 * build/volume.go: binds (and `type: bind` mounts) whose source does not start with "/" name
 * a volume, replaced by the volume's merged directory; a read-only volume must be bound "ro".
 *
 * LinuxKit bug, fixed here: volume.go rewrites `mounts` entries through a copy of each mount
 * (Go range variable), so their source stays the bare volume name and the container gets a
 * bind of a relative path. tskit rewrites mounts like binds.
 */
function withVolumePaths(entry: ImageEntry, volumes: VolumeConfig[], fail: Fail): ImageEntry {
  const byName = new Map(volumes.map((v) => [v.name, v]));
  const out: ImageEntry = {...entry};
  if (entry.mounts) {
    out.mounts = entry.mounts.map((m, i) => {
      if (m.type !== 'bind' || (m.source ?? '').startsWith('/')) return m;
      const vol = byName.get(m.source ?? '');
      if (!vol) fail(['mounts', i], `volume "${m.source ?? ''}" not found`);
      if (vol.readonly && (m.options ?? []).find((o) => o === 'rw' || o === 'ro') !== 'ro') {
        fail(['mounts', i], `volume ${vol.name} is read-only, but attempting to write into container read-write`);
      }
      return {...m, source: volumeMergedDir(vol.name)};
    });
  }
  for (const field of ['binds', 'binds.add'] as const) {
    const list = entry[field];
    if (!list) continue;
    out[field] = list.map((bind, i) => {
      const parts = bind.split(':');
      if (parts[0]!.startsWith('/')) return bind;
      const vol = byName.get(parts[0]!);
      if (!vol) fail([field, i], `volume "${parts[0]}" not found`);
      if (vol.readonly && (parts.length < 3 || parts[2] !== 'ro')) {
        fail([field, i], `volume ${vol.name} is read-only, but attempting to write into container read-write`);
      }
      parts[0] = volumeMergedDir(vol.name);
      return parts.join(':');
    });
  }
  return out;
}

/**
 * LinuxKit's mergeStrings, as it was meant to work: an ordered merge keeping each value once.
 *
 * LinuxKit bug, fixed here: its mergeStrings never records what it has seen, so
 * `capabilities.add` plus the label's `capabilities` repeats every capability present in both
 * in the process's effective set. tskit de-duplicates, keeping the first occurrence.
 * (For binds.add the duplicates were harmless: binds are keyed by destination.)
 */
export function mergeUnique(v1: string[] | undefined, v2: string[] | undefined): string[] {
  if (v1 === undefined && v2 === undefined) return [];
  if (v2 === undefined) return v1!;
  if (v1 === undefined) return v2;
  return [...new Set([...v1, ...v2])];
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const DEFAULT_PROC_OPTIONS = ['nosuid', 'nodev', 'noexec', 'relatime'];
const DEFAULT_PTS_OPTIONS = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
const DEFAULT_CGROUP_OPTIONS = ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'];

/**
 * config.json and runtime.json content for one image entry, given the image's config and the
 * container id map. Throws BundleConfigError (a TskitError) naming the container and the field
 * when the entry or the image's label cannot be turned into a spec, and TskitError for a label
 * that does not parse or fails LinuxKit's schema.
 */
export function bundleConfig(entry: ImageEntry, image: ContainerConfig | undefined, ctx: BundleContext): BundleConfig {
  const what = `container "${entry.name}" (${entry.image})`;
  const labelText = image?.Labels?.[LABEL] ?? '';
  const label: ImageConfigFields = labelText !== '' ? parseImageLabel(labelText, what) : {};
  // name the field, and say when the offending value came from the image's label
  const fail: Fail = (field, message, fromLabel = false) => {
    const origin = fromLabel ? ` (from the image's ${LABEL} label)` : '';
    throw new BundleConfigError(`${what}: ${formatPath(field)}: ${message}${origin}`, field, fromLabel);
  };
  const failAt: (origin: [Array<string | number>, boolean], message: string) => never = ([field, fromLabel], message) => fail(field, message, fromLabel);
  /** The path of item i of a list taken from the entry, else from the label. */
  const itemOf = (name: keyof ImageConfigFields, i: number): [Array<string | number>, boolean] => [[name, i], entry[name] === undefined];
  const y = withVolumePaths(entry, ctx.volumes, fail);

  // command, env and cwd may come from the image config, as Dockerfiles set them
  const args = y.command ?? label.command ?? [...(image?.Entrypoint ?? []), ...(image?.Cmd ?? [])];
  const env = y.env ?? label.env ?? image?.Env ?? [];
  const cwd = y.cwd || label.cwd || image?.WorkingDir || '/';

  const readonly = y.readonly ?? label.readonly ?? false;

  // default mounts as Docker's (without /dev/shm and /dev/mqueue); readonly adds "ro" to /dev and /sys
  const mounts = new Map<string, OciMount>([
    ['/proc', {destination: '/proc', type: 'proc', source: 'proc', options: DEFAULT_PROC_OPTIONS}],
    [
      '/dev',
      {destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k', ...(readonly ? ['ro'] : [])]},
    ],
    ['/dev/pts', {destination: '/dev/pts', type: 'devpts', source: 'devpts', options: DEFAULT_PTS_OPTIONS}],
    ['/sys', {destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...(readonly ? ['ro'] : [])]}],
    ['/sys/fs/cgroup', {destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: DEFAULT_CGROUP_OPTIONS}],
  ]);
  (y.tmpfs ?? label.tmpfs ?? []).forEach((t, i) => {
    const parts = t.split(':');
    if (parts.length > 2) failAt(itemOf('tmpfs', i), `cannot parse tmpfs, too many ':': ${t}`);
    const dest = parts[0]!;
    mounts.set(dest, {destination: dest, type: 'tmpfs', source: 'tmpfs', options: parts.length === 2 ? parts[1]!.split(',') : undefined});
  });
  const binds = y.binds ?? mergeUnique(label.binds, y['binds.add']);
  // where a bind came from: binds, else binds.add, else the label
  const bindOrigin = (b: string, i: number): [Array<string | number>, boolean] => {
    if (y.binds) return [['binds', i], false];
    const k = y['binds.add']?.indexOf(b) ?? -1;
    return k >= 0 && !label.binds?.includes(b) ? [['binds.add', k], false] : [['binds', label.binds?.indexOf(b) ?? i], true];
  };
  binds.forEach((b, i) => {
    const parts = b.split(':');
    if (parts.length < 2) failAt(bindOrigin(b, i), `cannot parse bind, missing ':': ${b}`);
    if (parts.length > 3) failAt(bindOrigin(b, i), `cannot parse bind, too many ':': ${b}`);
    const [src, dest] = parts as [string, string];
    // rshared unless options are given
    const options = parts.length === 3 ? [...parts[2]!.split(','), 'rbind'] : ['rw', 'rbind', 'rshared'];
    mounts.set(dest, {destination: dest, type: 'bind', source: src, options});
  });
  (y.mounts ?? label.mounts ?? []).forEach((m, i) => {
    const r = resolveMount(m);
    if (typeof r === 'string') failAt(itemOf('mounts', i), r);
    mounts.set(r.destination, {destination: r.destination, type: r.type, source: r.source, options: m.options});
  });
  // sorted by destination, so /dev comes before /dev/pts
  const mountList = [...mounts.values()].sort((a, b) => compareBytes(a.destination, b.destination));

  // net, ipc, uts and user default to the host's namespace; pid to a new one; mount is always new
  const namespaces: Array<{type: string; path?: string}> = [];
  const ns = (type: string, value: string, emptyWords: string[]) => {
    if (value === 'host' || value === 'root') return;
    namespaces.push(emptyWords.includes(value) ? {type} : {type, path: value});
  };
  ns('network', y.net || label.net || 'root', ['none', 'new']);
  ns('ipc', y.ipc || label.ipc || 'root', ['new']);
  ns('uts', y.uts || label.uts || 'root', ['new']);
  ns('pid', y.pid || label.pid || '', ['new', '']);
  ns('user', y.userns || label.userns || 'root', ['new']);
  namespaces.push({type: 'mount'});

  // an unknown capability is reported where it is written: the entry's list, else the label's
  const capabilityOrigin = (c: string, fields: Array<'capabilities' | 'capabilities.add' | 'ambient'>): [Array<string | number>, boolean] => {
    for (const [source, fromLabel] of [[entry, false], [label, true]] as const) {
      for (const f of fields) {
        const k = source[f]?.indexOf(c) ?? -1;
        if (k >= 0) return [[f, k], fromLabel];
      }
    }
    return [[fields[0]!], false];
  };
  const expand = (list: string[], fields: Array<'capabilities' | 'capabilities.add' | 'ambient'>): string[] => {
    const kw = capabilityKeyword(list);
    if (kw === 'none') return [];
    if (kw === 'all') return [...ALL_CAPABILITIES];
    for (const c of list) if (!isKnownCapability(c)) failAt(capabilityOrigin(c, fields), `unknown capability: ${c}`);
    return list;
  };
  const caps = expand(y.capabilities ?? mergeUnique(label.capabilities, y['capabilities.add']), y.capabilities ? ['capabilities'] : ['capabilities.add', 'capabilities']);
  const ambient = expand(y.ambient ?? label.ambient ?? [], ['ambient']);
  const bounding = [...new Set([...caps, ...ambient])].sort(compareBytes);

  const rlimits = (y.rlimits ?? label.rlimits ?? []).map((r, i): OciRlimit => {
    const parsed = parseRlimit(r);
    if (typeof parsed === 'string') failAt(itemOf('rlimits', i), parsed);
    return {type: parsed.type, hard: parsed.hard, soft: parsed.soft};
  });

  const id = (value: string | GoInteger | undefined, field: Array<string | number>, fromLabel: boolean) => {
    try {
      return idNumeric(value, ctx.idMap, String(field[0]));
    } catch (err) {
      return fail(field, (err as Error).message, fromLabel);
    }
  };
  const uid = id(y.uid ?? label.uid, ['uid'], y.uid === undefined);
  const gid = id(y.gid ?? label.gid, ['gid'], y.gid === undefined);
  const additionalGids = (y.additionalGids ?? label.additionalGids ?? []).map((g, i) => id(g, ...itemOf('additionalGids', i)));

  const resources: OciResources = {...((y.resources ?? label.resources ?? {}) as OciResources)};
  const cgroupDevices = [...(resources.devices ?? [])];
  const devices: OciDevice[] = [];
  (y.devices ?? label.devices ?? []).forEach((d: DeviceConfig, i) => {
    if (d.path === 'all') {
      // a whole class of devices in the device cgroup allow list
      cgroupDevices.push({allow: true, type: d.type ?? '', access: 'rwm'});
      return;
    }
    const mode = parseOctalMode(d.mode ?? '');
    if (mode === undefined) failAt(itemOf('devices', i), `cannot parse device mode as octal value: "${d.mode ?? ''}"`);
    const dev: OciDevice = {path: d.path ?? '', type: d.type ?? '', major: d.major ?? 0, minor: d.minor ?? 0, fileMode: mode >>> 0};
    devices.push(dev);
    cgroupDevices.push({allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: 'rwm'});
  });
  if (cgroupDevices.length > 0) resources.devices = cgroupDevices;

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      user: {uid, gid, additionalGids},
      args,
      env,
      cwd,
      capabilities: {bounding, effective: caps, inheritable: bounding, permitted: bounding, ambient},
      rlimits,
      noNewPrivileges: y.noNewPrivileges ?? label.noNewPrivileges ?? false,
      oomScoreAdj: y.oomScoreAdj ?? label.oomScoreAdj,
    },
    root: {path: 'rootfs', readonly},
    hostname: y.hostname || label.hostname || '',
    mounts: mountList,
    annotations: y.annotations ?? label.annotations ?? {},
    linux: {
      uidMappings: y.uidMappings ?? label.uidMappings ?? [],
      gidMappings: y.gidMappings ?? label.gidMappings ?? [],
      sysctl: y.sysctl ?? label.sysctl ?? {},
      resources,
      cgroupsPath: y.cgroupsPath ?? label.cgroupsPath ?? '',
      namespaces,
      devices,
      rootfsPropagation: y.rootfsPropagation ?? label.rootfsPropagation ?? '',
      maskedPaths: y.maskedPaths ?? label.maskedPaths ?? [],
      readonlyPaths: y.readonlyPaths ?? label.readonlyPaths ?? [],
    },
  };

  // each runtime field separately: the entry's, else the label's, else empty
  const yr = y.runtime ?? {};
  const lr = label.runtime ?? {};
  const runtime: BundleRuntime = {
    cgroups: yr.cgroups ?? lr.cgroups ?? [],
    mounts: yr.mounts ?? lr.mounts ?? [],
    mkdir: yr.mkdir ?? lr.mkdir ?? [],
    interfaces: yr.interfaces ?? lr.interfaces ?? [],
    bindNS: Object.fromEntries(
      (['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const).map((k) => [k, yr.bindNS?.[k] ?? lr.bindNS?.[k] ?? '']),
    ),
    namespace: yr.namespace ?? lr.namespace ?? '',
  };

  return {spec, runtime, readonly};
}

/**
 * What LinuxKit's ImageBundle prepends to runtime.json's mounts for a container whose files
 * live under `prefix` (e.g. "containers/onboot/000-sysctl"): a read-only container binds its
 * rootfs onto itself (or onto the first copy of the same image, `sharedRoot`); otherwise an
 * overlay of the unpacked image ("lower") and a tmpfs upper layer becomes rootfs.
 */
export function rootfsMounts(prefix: string, readonly: boolean, sharedRoot?: string): MountConfig[] {
  const root = sharedRoot ?? posix.join(prefix, readonly ? 'rootfs' : 'lower');
  if (readonly) return [{source: '/' + root, destination: '/' + posix.join(prefix, 'rootfs'), options: ['bind']}];
  const tmp = posix.join(prefix, 'tmp');
  return [
    {source: 'tmpfs', type: 'tmpfs', destination: '/' + tmp},
    {destination: '/' + tmp, options: ['remount', 'private']},
    {
      source: 'overlay',
      type: 'overlay',
      destination: '/' + posix.join(prefix, 'rootfs'),
      options: ['lowerdir=/' + root, 'upperdir=/' + posix.join(tmp, 'upper'), 'workdir=/' + posix.join(tmp, 'work')],
    },
  ];
}
