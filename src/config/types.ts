// The LinuxKit YAML model (moby config), field for field as LinuxKit's schema defines it.
// Optional fields stay undefined when absent: merging with the image's
// org.mobyproject.config label depends on telling "absent" from "empty".

/**
 * An integer from the YAML: a number when it is exactly representable, a bigint beyond
 * Number.MAX_SAFE_INTEGER (Go fields are int64/uint64, and config.json must keep every digit).
 */
export type GoInteger = number | bigint;

export interface KernelConfig {
  image?: string;
  cmdline?: string;
  binary?: string;
  tar?: string;
  ucode?: string;
}

export interface FileConfig {
  path: string;
  directory?: boolean;
  symlink?: string;
  contents?: string;
  source?: string;
  metadata?: string;
  optional?: boolean;
  mode?: string;
  uid?: string | GoInteger;
  gid?: string | GoInteger;
}

export interface VolumeConfig {
  name: string;
  image?: string;
  readonly?: boolean;
  format?: 'oci' | 'filesystem';
  platforms?: string[];
}

export interface TrustConfig {
  image?: string[];
  org?: string[];
}

export interface IDMapping {
  hostID?: GoInteger;
  containerID?: GoInteger;
  size?: GoInteger;
}

export interface MountConfig {
  destination?: string;
  type?: string;
  source?: string;
  options?: string[];
  uidmappings?: IDMapping[];
  gidmappings?: IDMapping[];
}

export interface DeviceConfig {
  path?: string;
  type?: string;
  major?: GoInteger;
  minor?: GoInteger;
  mode?: string;
}

export interface InterfaceConfig {
  name?: string;
  add?: string;
  peer?: string;
  createInRoot?: boolean;
}

export interface NamespacesConfig {
  cgroup?: string;
  ipc?: string;
  mnt?: string;
  net?: string;
  pid?: string;
  user?: string;
  uts?: string;
}

export interface RuntimeConfig {
  cgroups?: string[];
  mounts?: MountConfig[];
  mkdir?: string[];
  interfaces?: InterfaceConfig[];
  bindNS?: NamespacesConfig;
  namespace?: string;
}

/** Linux resources exactly as the OCI runtime spec (and LinuxKit's schema) name them. */
export type ResourcesConfig = Record<string, unknown>;

/** The part of an image entry that may also come from the image's org.mobyproject.config label. */
export interface ImageConfigFields {
  capabilities?: string[];
  'capabilities.add'?: string[];
  ambient?: string[];
  mounts?: MountConfig[];
  binds?: string[];
  'binds.add'?: string[];
  devices?: DeviceConfig[];
  tmpfs?: string[];
  command?: string[];
  env?: string[];
  cwd?: string;
  net?: string;
  pid?: string;
  ipc?: string;
  uts?: string;
  userns?: string;
  hostname?: string;
  readonly?: boolean;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  uid?: string | GoInteger;
  gid?: string | GoInteger;
  additionalGids?: Array<string | GoInteger>;
  noNewPrivileges?: boolean;
  oomScoreAdj?: GoInteger;
  rootfsPropagation?: string;
  cgroupsPath?: string;
  resources?: ResourcesConfig;
  sysctl?: Record<string, string>;
  rlimits?: string[];
  uidMappings?: IDMapping[];
  gidMappings?: IDMapping[];
  annotations?: Record<string, string>;
  runtime?: RuntimeConfig;
}

export interface ImageEntry extends ImageConfigFields {
  name: string;
  image: string;
}

export type Section = 'onboot' | 'onshutdown' | 'services';

/** tskit's extension: where bootable layouts get their boot loaders (docs/formats.md). */
export interface BootloaderConfig {
  image?: string;
}

export interface MobyConfig {
  kernel?: KernelConfig;
  bootloader?: BootloaderConfig;
  init?: string[];
  onboot?: ImageEntry[];
  onshutdown?: ImageEntry[];
  services?: ImageEntry[];
  trust?: TrustConfig;
  files?: FileConfig[];
  volumes?: VolumeConfig[];
}

/** Where a value came from, for errors after parsing (file:line:col). */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}
