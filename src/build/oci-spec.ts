// PLACEHOLDER until the config branch lands (it ports LinuxKit's ConfigToOCI in full).
import type {ContainerConfig} from '../oci/types.ts';
import type {ImageEntry, RuntimeConfig, VolumeConfig} from '../config/types.ts';

export interface BundleConfig {
  spec: Record<string, unknown>;
  runtime: RuntimeConfig;
  readonly: boolean;
}

export function bundleConfig(entry: ImageEntry, image: ContainerConfig | undefined, ctx: {idMap: Map<string, number>; volumes: VolumeConfig[]}): BundleConfig {
  void ctx;
  const readonly = entry.readonly ?? false;
  const args = entry.command ?? [...(image?.Entrypoint ?? []), ...(image?.Cmd ?? [])];
  const mounts = [
    {destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
    {destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec', 'relatime']},
    {destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev']},
    ...(entry.binds ?? []).map((b) => {
      const [src, dst, opts] = b.split(':');
      return {destination: dst, type: 'bind', source: src, options: opts ? [...opts.split(','), 'rbind'] : ['rw', 'rbind', 'rshared']};
    }),
  ];
  return {
    readonly,
    runtime: {...(entry.runtime ?? {})},
    spec: {
      ociVersion: '1.0.2',
      process: {terminal: false, user: {uid: 0, gid: 0}, args, env: entry.env ?? image?.Env ?? [], cwd: entry.cwd ?? image?.WorkingDir ?? '/'},
      root: {path: 'rootfs', readonly},
      mounts,
      linux: {namespaces: [{type: 'pid'}, {type: 'mount'}]},
    },
  };
}

export function formatSpecJson(spec: Record<string, unknown>): string {
  return JSON.stringify(spec, null, 4);
}

export function formatRuntimeJson(runtime: RuntimeConfig): string {
  return JSON.stringify(runtime, null, 4);
}
