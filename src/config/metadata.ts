// The content LinuxKit writes for a `files:` entry with `metadata: json|yaml` (build.go
// metadata()): the merged config with image references expanded (UpdateImages), marshalled
// as Go's moby.Moby struct with encoding/json (MarshalIndent, 4 spaces) or yaml.v2.
// Field order, omitempty and nil-versus-empty follow those Go structs; `trust` is not part of
// moby.Moby and so never appears.
import {goMap, goMarshalIndent} from './go-json.ts';
import {mapping, yamlV2Marshal, type YamlMapping, type YamlValue} from './go-yaml-v2.ts';
import {expandReference} from './image-ref-check.ts';
import type {
  DeviceConfig,
  FileConfig,
  GoInteger,
  IDMapping,
  ImageEntry,
  MobyConfig,
  MountConfig,
  RuntimeConfig,
  VolumeConfig,
} from './types.ts';

export type MetadataFormat = 'json' | 'yaml';

/** UpdateImages: kernel, init and container images as full references (volumes keep theirs). */
function withExpandedImages(c: MobyConfig): MobyConfig {
  return {
    ...c,
    kernel: c.kernel && {...c.kernel, image: c.kernel.image ? expandReference(c.kernel.image) : c.kernel.image},
    init: c.init?.map(expandReference),
    onboot: c.onboot?.map((e) => ({...e, image: expandReference(e.image)})),
    onshutdown: c.onshutdown?.map((e) => ({...e, image: expandReference(e.image)})),
    services: c.services?.map((e) => ({...e, image: expandReference(e.image)})),
  };
}

/**
 * LinuxKit appends each file's lists onto an empty config, and Go's append of nothing to a
 * nil slice stays nil: an empty list is written as null (JSON) / [] (yaml.v2) like an absent one.
 */
const nilIfEmpty = <T>(v: T[] | undefined): T[] | undefined => (v && v.length > 0 ? v : undefined);

// ---- encoding/json (json tags of moby.Moby and the runtime-spec structs it embeds) ----

const jstr = (v: string | undefined) => (v ? v : undefined);
const jlist = <T>(v: T[] | undefined) => (v && v.length > 0 ? v : undefined);
const jint = (v: GoInteger | undefined): GoInteger => v ?? 0;

function jsonIdMapping(m: IDMapping) {
  return {containerID: jint(m.containerID), hostID: jint(m.hostID), size: jint(m.size)};
}

function jsonMount(m: MountConfig) {
  return {
    destination: m.destination ?? '',
    type: jstr(m.type),
    source: jstr(m.source),
    options: jlist(m.options),
    uidMappings: jlist(m.uidmappings)?.map(jsonIdMapping),
    gidMappings: jlist(m.gidmappings)?.map(jsonIdMapping),
  };
}

function jsonResources(r: Record<string, unknown>) {
  const sub = (v: unknown) => v as Record<string, unknown> | undefined;
  const mem = sub(r.memory);
  const cpu = sub(r.cpu);
  const pids = sub(r.pids);
  const blockio = sub(r.blockio);
  const network = sub(r.network);
  const devices = r.devices as Array<Record<string, unknown>> | undefined;
  return {
    devices: jlist(devices)?.map((d) => ({allow: d.allow ?? false, type: jstr(d.type as string), major: d.major, minor: d.minor, access: jstr(d.access as string)})),
    memory: mem && {limit: mem.limit, reservation: mem.reservation, swap: mem.swap, kernel: mem.kernel, swappiness: mem.swappiness},
    cpu: cpu && {shares: cpu.shares, quota: cpu.quota, period: cpu.period, cpus: jstr(cpu.cpus as string), mems: jstr(cpu.mems as string)},
    pids: pids && {limit: jint(pids.limit as GoInteger)},
    blockIO: blockio && {weight: blockio.weight},
    network: network && {
      priorities: jlist(network.priorities as Array<Record<string, unknown>>)?.map((p) => ({name: p.name ?? '', priority: jint(p.priority as GoInteger)})),
    },
  };
}

function jsonRuntime(r: RuntimeConfig) {
  const b = r.bindNS ?? {};
  return {
    cgroups: r.cgroups,
    mounts: r.mounts?.map(jsonMount),
    mkdir: r.mkdir,
    interfaces: r.interfaces?.map((i) => ({name: jstr(i.name), add: jstr(i.add), peer: jstr(i.peer), createInRoot: i.createInRoot ?? false})),
    bindNS: {cgroup: b.cgroup, ipc: b.ipc, mnt: b.mnt, net: b.net, pid: b.pid, user: b.user, uts: b.uts},
    namespace: r.namespace,
  };
}

function jsonDevice(d: DeviceConfig) {
  return {path: d.path ?? '', type: d.type ?? '', major: jint(d.major), minor: jint(d.minor), mode: jstr(d.mode)};
}

function jsonImage(e: ImageEntry) {
  return {
    name: e.name,
    image: e.image,
    capabilities: e.capabilities,
    'capabilities.add': e['capabilities.add'],
    ambient: e.ambient,
    mounts: e.mounts?.map(jsonMount),
    binds: e.binds,
    'binds.add': e['binds.add'],
    devices: e.devices?.map(jsonDevice),
    tmpfs: e.tmpfs,
    command: e.command,
    env: e.env,
    cwd: jstr(e.cwd),
    net: jstr(e.net),
    pid: jstr(e.pid),
    ipc: jstr(e.ipc),
    uts: jstr(e.uts),
    userns: jstr(e.userns),
    hostname: jstr(e.hostname),
    readonly: e.readonly,
    maskedPaths: e.maskedPaths,
    readonlyPaths: e.readonlyPaths,
    uid: e.uid,
    gid: e.gid,
    additionalGids: e.additionalGids,
    noNewPrivileges: e.noNewPrivileges,
    oomScoreAdj: e.oomScoreAdj,
    rootfsPropagation: e.rootfsPropagation,
    cgroupsPath: e.cgroupsPath,
    resources: e.resources && jsonResources(e.resources),
    sysctl: e.sysctl && goMap(e.sysctl),
    rlimits: e.rlimits,
    uidMappings: e.uidMappings?.map(jsonIdMapping),
    gidMappings: e.gidMappings?.map(jsonIdMapping),
    annotations: e.annotations && goMap(e.annotations),
    runtime: e.runtime && jsonRuntime(e.runtime),
  };
}

function jsonFile(f: FileConfig) {
  return {
    path: f.path ?? '',
    directory: f.directory ?? false,
    symlink: jstr(f.symlink),
    contents: f.contents,
    source: jstr(f.source),
    metadata: jstr(f.metadata),
    optional: f.optional ?? false,
    mode: jstr(f.mode),
    uid: f.uid,
    gid: f.gid,
  };
}

function jsonVolume(v: VolumeConfig) {
  return {name: v.name, image: jstr(v.image), readonly: v.readonly || undefined, format: jstr(v.format), platforms: jlist(v.platforms)};
}

function toJson(c: MobyConfig): string {
  const k = c.kernel ?? {};
  return goMarshalIndent({
    kernel: {image: k.image ?? '', cmdline: jstr(k.cmdline), binary: jstr(k.binary), tar: k.tar, ucode: k.ucode},
    init: nilIfEmpty(c.init) ?? null,
    onboot: nilIfEmpty(c.onboot)?.map(jsonImage) ?? null,
    onshutdown: nilIfEmpty(c.onshutdown)?.map(jsonImage) ?? null,
    services: nilIfEmpty(c.services)?.map(jsonImage) ?? null,
    files: nilIfEmpty(c.files)?.map(jsonFile) ?? null,
    volumes: nilIfEmpty(c.volumes)?.map(jsonVolume) ?? null,
  });
}

// ---- yaml.v2 (yaml tags where present, else lower-cased Go field names; no omitempty there) ----

type Y = YamlValue | undefined;
const ystr = (v: string | undefined): Y => (v ? v : undefined);
const yint = (v: GoInteger | undefined): YamlValue => v ?? 0;
/** a Go pointer field with no omitempty: null when nil */
const yptr = (v: unknown): YamlValue => (v === undefined ? null : (v as YamlValue));

function yamlIdMapping(m: IDMapping): YamlMapping {
  return mapping([
    ['containerid', yint(m.containerID)],
    ['hostid', yint(m.hostID)],
    ['size', yint(m.size)],
  ]);
}

/** specs.Mount has no yaml tags: every field, lower-cased, always written. */
function yamlMount(m: MountConfig): YamlMapping {
  return mapping([
    ['destination', m.destination ?? ''],
    ['type', m.type ?? ''],
    ['source', m.source ?? ''],
    ['options', m.options ?? []],
    ['uidmappings', (m.uidmappings ?? []).map(yamlIdMapping)],
    ['gidmappings', (m.gidmappings ?? []).map(yamlIdMapping)],
  ]);
}

function yamlResources(r: Record<string, unknown>): YamlMapping {
  const sub = (v: unknown) => v as Record<string, unknown> | undefined;
  const mem = sub(r.memory);
  const cpu = sub(r.cpu);
  const pids = sub(r.pids);
  const blockio = sub(r.blockio);
  const network = sub(r.network);
  const fields = (v: Record<string, unknown> | undefined, names: string[], build: (v: Record<string, unknown>) => Array<[string, Y]>) =>
    v === undefined ? null : mapping(build(v).concat(names.map((n): [string, Y] => [n, null])));
  return mapping([
    [
      'devices',
      ((r.devices as Array<Record<string, unknown>> | undefined) ?? []).map((d) =>
        mapping([
          ['allow', (d.allow as boolean | undefined) ?? false],
          ['type', (d.type as string | undefined) ?? ''],
          ['major', yptr(d.major)],
          ['minor', yptr(d.minor)],
          ['access', (d.access as string | undefined) ?? ''],
        ]),
      ),
    ],
    [
      'memory',
      fields(mem, [], (m) => [
        ['limit', yptr(m.limit)],
        ['reservation', yptr(m.reservation)],
        ['swap', yptr(m.swap)],
        ['kernel', yptr(m.kernel)],
        ['kerneltcp', null],
        ['swappiness', yptr(m.swappiness)],
        ['disableoomkiller', null],
        ['usehierarchy', null],
        ['checkbeforeupdate', null],
      ]),
    ],
    [
      'cpu',
      fields(cpu, [], (c) => [
        ['shares', yptr(c.shares)],
        ['quota', yptr(c.quota)],
        ['burst', null],
        ['period', yptr(c.period)],
        ['realtimeruntime', null],
        ['realtimeperiod', null],
        ['cpus', (c.cpus as string | undefined) ?? ''],
        ['mems', (c.mems as string | undefined) ?? ''],
        ['idle', null],
      ]),
    ],
    ['pids', fields(pids, [], (p) => [['limit', yint(p.limit as GoInteger | undefined)]])],
    [
      'blockio',
      fields(blockio, [], (b) => [
        ['weight', yptr(b.weight)],
        ['leafweight', null],
        ['weightdevice', []],
        ['throttlereadbpsdevice', []],
        ['throttlewritebpsdevice', []],
        ['throttlereadiopsdevice', []],
        ['throttlewriteiopsdevice', []],
      ]),
    ],
    ['hugepagelimits', []],
    [
      'network',
      fields(network, [], (n) => [
        ['classid', null],
        [
          'priorities',
          ((n.priorities as Array<Record<string, unknown>> | undefined) ?? []).map((p) =>
            mapping([
              ['name', (p.name as string | undefined) ?? ''],
              ['priority', yint(p.priority as GoInteger | undefined)],
            ]),
          ),
        ],
      ]),
    ],
    ['rdma', mapping([])],
    ['unified', mapping([])],
  ]);
}

function yamlRuntime(r: RuntimeConfig): YamlMapping {
  const b = r.bindNS ?? {};
  const bind = mapping(
    (['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const).map((k): [string, Y] => [k, b[k]]),
  );
  return mapping([
    ['cgroups', r.cgroups],
    ['mounts', r.mounts?.map(yamlMount)],
    ['mkdir', r.mkdir],
    [
      'interfaces',
      r.interfaces?.map((i) =>
        mapping([
          ['name', ystr(i.name)],
          ['add', ystr(i.add)],
          ['peer', ystr(i.peer)],
          ['createInRoot', i.createInRoot ?? false],
        ]),
      ),
    ],
    // a struct with omitempty: left out when all its fields are nil
    ['bindNS', bind.entries.length > 0 ? bind : undefined],
    ['namespace', r.namespace],
  ]);
}

function yamlImage(e: ImageEntry): YamlMapping {
  const map = (m: Record<string, string> | undefined) => m && mapping(Object.entries(m), true);
  return mapping([
    ['name', e.name],
    ['image', e.image],
    ['capabilities', e.capabilities],
    ['capabilities.add', e['capabilities.add']],
    ['ambient', e.ambient],
    ['mounts', e.mounts?.map(yamlMount)],
    ['binds', e.binds],
    ['binds.add', e['binds.add']],
    [
      'devices',
      e.devices?.map((d) =>
        mapping([
          ['path', d.path ?? ''],
          ['type', d.type ?? ''],
          ['major', yint(d.major)],
          ['minor', yint(d.minor)],
          ['mode', ystr(d.mode)],
        ]),
      ),
    ],
    ['tmpfs', e.tmpfs],
    ['command', e.command],
    ['env', e.env],
    ['cwd', ystr(e.cwd)],
    ['net', ystr(e.net)],
    ['pid', ystr(e.pid)],
    ['ipc', ystr(e.ipc)],
    ['uts', ystr(e.uts)],
    ['userns', ystr(e.userns)],
    ['hostname', ystr(e.hostname)],
    ['readonly', e.readonly],
    ['maskedPaths', e.maskedPaths],
    ['readonlyPaths', e.readonlyPaths],
    ['uid', e.uid],
    ['gid', e.gid],
    ['additionalGids', e.additionalGids],
    ['noNewPrivileges', e.noNewPrivileges],
    ['oomScoreAdj', e.oomScoreAdj],
    ['rootfsPropagation', e.rootfsPropagation],
    ['cgroupsPath', e.cgroupsPath],
    ['resources', e.resources && yamlResources(e.resources)],
    ['sysctl', map(e.sysctl)],
    ['rlimits', e.rlimits],
    ['uidMappings', e.uidMappings?.map(yamlIdMapping)],
    ['gidMappings', e.gidMappings?.map(yamlIdMapping)],
    ['annotations', map(e.annotations)],
    ['runtime', e.runtime && yamlRuntime(e.runtime)],
  ]);
}

function yamlFile(f: FileConfig): YamlMapping {
  return mapping([
    ['path', f.path ?? ''],
    ['directory', f.directory ?? false],
    ['symlink', ystr(f.symlink)],
    ['contents', f.contents],
    ['source', ystr(f.source)],
    ['metadata', ystr(f.metadata)],
    ['optional', f.optional ?? false],
    ['mode', ystr(f.mode)],
    ['uid', f.uid],
    ['gid', f.gid],
  ]);
}

function yamlVolume(v: VolumeConfig): YamlMapping {
  return mapping([
    ['name', v.name],
    ['image', ystr(v.image)],
    ['readonly', v.readonly || undefined],
    ['format', ystr(v.format)],
    ['platforms', v.platforms && v.platforms.length > 0 ? v.platforms : undefined],
  ]);
}

function toYaml(c: MobyConfig): string {
  const k = c.kernel ?? {};
  return yamlV2Marshal(
    mapping([
      [
        'kernel',
        mapping([
          ['image', k.image ?? ''],
          ['cmdline', ystr(k.cmdline)],
          ['binary', ystr(k.binary)],
          ['tar', k.tar],
          ['ucode', k.ucode],
        ]),
      ],
      ['init', c.init ?? []],
      ['onboot', (c.onboot ?? []).map(yamlImage)],
      ['onshutdown', (c.onshutdown ?? []).map(yamlImage)],
      ['services', (c.services ?? []).map(yamlImage)],
      ['files', (c.files ?? []).map(yamlFile)],
      ['volumes', (c.volumes ?? []).map(yamlVolume)],
    ]),
  );
}

/** The bytes LinuxKit writes for a `metadata:` file of this (merged, validated) config. */
export function renderMetadata(config: MobyConfig, format: MetadataFormat): string {
  const c = withExpandedImages(config);
  return format === 'json' ? toJson(c) : toYaml(c);
}
