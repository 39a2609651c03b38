// config.json and runtime.json bytes exactly as LinuxKit writes them: Go's
// json.MarshalIndent(v, "", "    ") of runtime-spec v1.2.1's specs.Spec and of moby.Runtime.
// Each function below lays out one Go struct: its fields in declaration order, with Go's
// omitempty rules (empty strings, false, zero numbers, empty slices and maps, nil pointers are
// left out; structs never are). Fields LinuxKit never sets are not listed.
import {goMap, goMarshalIndent} from '../config/go-json.ts';
import type {GoInteger, IDMapping, MountConfig, RuntimeConfig} from '../config/types.ts';
import type {BundleRuntime, OciResources, OciSpec} from './oci-spec.ts';

type Out = Record<string, unknown>;

/** omitempty for slices */
const list = <T>(v: T[] | undefined): T[] | undefined => (v && v.length > 0 ? v : undefined);
/** omitempty for strings */
const str = (v: string | undefined): string | undefined => (v ? v : undefined);
/** omitempty for maps */
const map = (v: Record<string, unknown> | undefined): Map<string, unknown> | undefined =>
  v && Object.keys(v).length > 0 ? goMap(v) : undefined;
/** a Go integer field without omitempty: 0 when unset */
const int = (v: GoInteger | undefined): GoInteger => v ?? 0;

function idMapping(m: IDMapping): Out {
  // specs.LinuxIDMapping: no omitempty. (From YAML only `size` ever arrives: see config/schema.ts.)
  return {containerID: int(m.containerID), hostID: int(m.hostID), size: int(m.size)};
}

/** specs.Mount */
function mount(m: MountConfig): Out {
  return {
    destination: m.destination ?? '',
    type: str(m.type),
    source: str(m.source),
    options: list(m.options),
    uidMappings: list(m.uidmappings)?.map(idMapping),
    gidMappings: list(m.gidmappings)?.map(idMapping),
  };
}

/** specs.LinuxResources with the pointer structs LinuxKit's YAML can reach. */
function resources(r: OciResources): Out {
  const ptr = (v: Record<string, unknown> | undefined, fields: Array<[string, string, 'ptr' | 'str' | 'int']>): Out | undefined => {
    if (v === undefined) return undefined;
    const out: Out = {};
    for (const [json, yaml, kind] of fields) {
      const x = v[yaml];
      out[json] = kind === 'ptr' ? x : kind === 'str' ? str(x as string | undefined) : int(x as GoInteger | undefined);
    }
    return out;
  };
  return {
    devices: list(r.devices)?.map((d) => ({allow: d.allow, type: str(d.type), major: d.major, minor: d.minor, access: str(d.access)})),
    memory: ptr(r.memory, [
      ['limit', 'limit', 'ptr'],
      ['reservation', 'reservation', 'ptr'],
      ['swap', 'swap', 'ptr'],
      ['kernel', 'kernel', 'ptr'],
      ['swappiness', 'swappiness', 'ptr'],
    ]),
    cpu: ptr(r.cpu, [
      ['shares', 'shares', 'ptr'],
      ['quota', 'quota', 'ptr'],
      ['period', 'period', 'ptr'],
      ['cpus', 'cpus', 'str'],
      ['mems', 'mems', 'str'],
    ]),
    pids: ptr(r.pids, [['limit', 'limit', 'int']]),
    blockIO: ptr(r.blockio, [['weight', 'weight', 'ptr']]),
    network: r.network && {
      priorities: list(r.network.priorities)?.map((p) => ({name: p.name ?? '', priority: int(p.priority)})),
    },
  };
}

/** config.json */
export function formatSpecJson(spec: OciSpec): string {
  const p = spec.process;
  const l = spec.linux;
  const caps = p.capabilities;
  return goMarshalIndent({
    ociVersion: spec.ociVersion,
    process: {
      user: {uid: p.user.uid, gid: p.user.gid, additionalGids: list(p.user.additionalGids)},
      args: list(p.args),
      env: list(p.env),
      cwd: p.cwd,
      capabilities: {
        bounding: list(caps.bounding),
        effective: list(caps.effective),
        inheritable: list(caps.inheritable),
        permitted: list(caps.permitted),
        ambient: list(caps.ambient),
      },
      rlimits: list(p.rlimits)?.map((r) => ({type: r.type, hard: r.hard, soft: r.soft})),
      noNewPrivileges: p.noNewPrivileges || undefined,
      oomScoreAdj: p.oomScoreAdj,
    },
    root: {path: spec.root.path, readonly: spec.root.readonly || undefined},
    hostname: str(spec.hostname),
    mounts: list(spec.mounts)?.map(mount),
    annotations: map(spec.annotations),
    linux: {
      uidMappings: list(l.uidMappings)?.map(idMapping),
      gidMappings: list(l.gidMappings)?.map(idMapping),
      sysctl: map(l.sysctl),
      resources: resources(l.resources),
      cgroupsPath: str(l.cgroupsPath),
      namespaces: list(l.namespaces)?.map((n) => ({type: n.type, path: str(n.path)})),
      devices: list(l.devices)?.map((d) => ({path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode})),
      rootfsPropagation: str(l.rootfsPropagation),
      maskedPaths: list(l.maskedPaths),
      readonlyPaths: list(l.readonlyPaths),
    },
  });
}

/**
 * runtime.json (moby.Runtime): its fields are pointers, so a field is written whenever it is
 * set, even when empty (`"cgroups": []`); bindNS is a struct and always written. Accepts the
 * rootfs mounts the build prepends ({source, type, destination, options}).
 */
export function formatRuntimeJson(runtime: BundleRuntime | RuntimeConfig): string {
  const b = runtime.bindNS ?? {};
  return goMarshalIndent({
    cgroups: runtime.cgroups,
    mounts: runtime.mounts?.map(mount),
    mkdir: runtime.mkdir,
    interfaces: runtime.interfaces?.map((i) => ({name: str(i.name), add: str(i.add), peer: str(i.peer), createInRoot: i.createInRoot ?? false})),
    bindNS: {cgroup: b.cgroup, ipc: b.ipc, mnt: b.mnt, net: b.net, pid: b.pid, user: b.user, uts: b.uts},
    namespace: runtime.namespace,
  });
}
