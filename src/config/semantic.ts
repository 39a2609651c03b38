// Checks beyond the schema, on the (merged) model, without pulling any image: what LinuxKit
// rejects when loading (duplicate service names, volume names, references) and what it only
// rejects during the build, sometimes after minutes of pulling (capabilities, rlimits, binds,
// tmpfs, mounts, device and file modes, uid/gid names, file rules, volume references).
// Each problem points at the node it is about.
import {capabilityKeyword, isKnownCapability} from './capabilities.ts';
import {checkImageReference} from './image-ref-check.ts';
import {containerIdMap} from './ids.ts';
import type {ConfigPath} from './merge.ts';
import type {ConfigProblem} from './problems.ts';
import type {GoInteger, ImageEntry, MobyConfig, MountConfig, SourcePosition, VolumeConfig} from './types.ts';

export const VOLUME_NAME = /^[a-z0-9_-]*$/;

export const RLIMIT_NAMES = [
  'RLIMIT_CPU',
  'RLIMIT_FSIZE',
  'RLIMIT_DATA',
  'RLIMIT_STACK',
  'RLIMIT_CORE',
  'RLIMIT_RSS',
  'RLIMIT_NPROC',
  'RLIMIT_NOFILE',
  'RLIMIT_MEMLOCK',
  'RLIMIT_AS',
  'RLIMIT_LOCKS',
  'RLIMIT_SIGPENDING',
  'RLIMIT_MSGQUEUE',
  'RLIMIT_NICE',
  'RLIMIT_RTPRIO',
  'RLIMIT_RTTIME',
];

export const UNLIMITED = (1n << 64n) - 1n;

export interface ParsedRlimit {
  type: string;
  soft: bigint;
  hard: bigint;
}

/** LinuxKit's rlimit syntax "name,soft,hard" (name case-insensitive, RLIMIT_ optional, "unlimited"). */
export function parseRlimit(text: string): ParsedRlimit | string {
  const firstComma = text.indexOf(',');
  const secondComma = firstComma < 0 ? -1 : text.indexOf(',', firstComma + 1);
  if (secondComma < 0) return `cannot parse rlimit "${text}": expected NAME,SOFT,HARD`;
  let type = text.slice(0, firstComma).trim().toUpperCase();
  if (!type.startsWith('RLIMIT_')) type = 'RLIMIT_' + type;
  const limit = (s: string): bigint | string => {
    const t = s.trim();
    if (t.toLowerCase() === 'unlimited') return UNLIMITED;
    if (!/^[0-9]+$/.test(t)) return `cannot parse "${t}" in rlimit "${text}" as a number or "unlimited"`;
    const v = BigInt(t);
    return v > UNLIMITED ? `"${t}" in rlimit "${text}" is larger than 18446744073709551615` : v;
  };
  const soft = limit(text.slice(firstComma + 1, secondComma));
  if (typeof soft === 'string') return soft;
  const hard = limit(text.slice(secondComma + 1));
  if (typeof hard === 'string') return hard;
  if (!RLIMIT_NAMES.includes(type)) return `unknown rlimit "${text.slice(0, firstComma).trim()}" (known: ${RLIMIT_NAMES.map((n) => n.slice(7).toLowerCase()).join(', ')})`;
  return {type, soft, hard};
}

/** strconv.ParseInt(s, 8, 32) as LinuxKit uses it for file and device modes. */
export function parseOctalMode(s: string): number | undefined {
  if (!/^[+-]?[0-7]+$/.test(s)) return undefined;
  const v = parseInt(s, 8);
  return v >= -(2 ** 31) && v < 2 ** 31 ? v : undefined;
}

export const MOUNT_TYPE_FROM_SOURCE = ['mqueue', 'devpts', 'proc', 'sysfs', 'cgroup'];

export function defaultMountpoint(type: string): string {
  switch (type) {
    case 'proc':
      return '/proc';
    case 'devpts':
      return '/dev/pts';
    case 'sysfs':
      return '/sys';
    case 'cgroup':
      return '/sys/fs/cgroup';
    case 'mqueue':
      return '/dev/mqueue';
    default:
      return '';
  }
}

/** A mount's type and destination as LinuxKit infers them, or the reason it cannot. */
export function resolveMount(m: MountConfig): {type: string; source: string; destination: string} | string {
  let type = m.type ?? '';
  const source = m.source ?? '';
  let destination = m.destination ?? '';
  if (type === '' && MOUNT_TYPE_FROM_SOURCE.includes(source)) type = source;
  if (type === '' && destination === '/dev') type = 'tmpfs';
  if (type === '') return `mount for destination ${destination} is missing type`;
  if (destination === '') destination = defaultMountpoint(type);
  if (destination === '') return `mount type ${type} is missing destination`;
  return {type, source: source === '' ? type : source, destination};
}

export type PositionOf = (path: ConfigPath) => SourcePosition | undefined;

const SECTIONS = ['onboot', 'onshutdown', 'services'] as const;

export function semanticProblems(config: MobyConfig, positionOf: PositionOf, fallbackFile: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const report = (path: ConfigPath, message: string) => {
    const p = positionOf(path) ?? {file: fallbackFile, line: 1, col: 1};
    problems.push({file: p.file, line: p.line, col: p.col, message});
  };
  const where = (path: ConfigPath) => {
    const p = positionOf(path);
    return p ? `${p.file}:${p.line}:${p.col}` : 'elsewhere';
  };
  const ids = containerIdMap(config);

  const checkRef = (ref: unknown, path: ConfigPath) => {
    if (typeof ref !== 'string') return;
    const why = checkImageReference(ref);
    if (why) report(path, `invalid image reference "${ref}": ${why}`);
  };

  const checkId = (value: string | GoInteger | undefined, path: ConfigPath, what: string) => {
    if (value === undefined) return;
    if (typeof value !== 'string') {
      const v = BigInt(value);
      if (v < 0n || v > 0xffffffffn) report(path, `${what} ${v} is out of range (0 to 4294967295)`);
      return;
    }
    if (value === '' || value === 'root' || ids.has(value)) return;
    const hint = /^[0-9]+$/.test(value) ? ' (write the number without quotes)' : '';
    report(path, `${what} "${value}" is not a number, "root", or the name of an onboot, onshutdown or service container${hint}`);
  };

  // kernel and init
  if (config.kernel?.image) checkRef(config.kernel.image, ['kernel', 'image']);
  if (config.bootloader?.image) checkRef(config.bootloader.image, ['bootloader', 'image']);
  config.init?.forEach((ref, i) => checkRef(ref, ['init', i]));

  // volumes: names unique across every merged file (see merge.ts for LinuxKit's lookup bug)
  const volumes = new Map<string, {vol: VolumeConfig; index: number}>();
  config.volumes?.forEach((vol, i) => {
    if (typeof vol.name !== 'string') {
      report(['volumes', i], 'volume needs a name');
      return;
    }
    if (!VOLUME_NAME.test(vol.name)) {
      report(['volumes', i, 'name'], `invalid volume name "${vol.name}": only lowercase letters, digits, "_" and "-" are allowed`);
    }
    const first = volumes.get(vol.name);
    if (first) report(['volumes', i, 'name'], `duplicate volume name "${vol.name}" (first declared at ${where(['volumes', first.index, 'name'])})`);
    else volumes.set(vol.name, {vol, index: i});
    if (vol.image) checkRef(vol.image, ['volumes', i, 'image']);
    vol.platforms?.forEach((p, k) => {
      if (p.trim().split(':')[0]!.split('/').length > 3) report(['volumes', i, 'platforms', k], `too many slashes in platform "${p}" (expected os/arch[/variant])`);
    });
  });

  // service names must be unique: they run side by side as containers named after them
  const serviceNames = new Map<string, number>();
  config.services?.forEach((s, i) => {
    if (typeof s.name !== 'string') return;
    const first = serviceNames.get(s.name);
    if (first !== undefined) report(['services', i, 'name'], `duplicate service name "${s.name}" (first at ${where(['services', first, 'name'])})`);
    else serviceNames.set(s.name, i);
  });

  for (const section of SECTIONS) {
    config[section]?.forEach((entry, i) => checkEntry(entry, [section, i]));
  }

  function checkEntry(e: ImageEntry, base: ConfigPath) {
    const at = (...p: Array<string | number>): ConfigPath => [...base, ...p];
    checkRef(e.image, at('image'));

    for (const field of ['capabilities', 'capabilities.add', 'ambient'] as const) {
      const list = e[field];
      if (!list || capabilityKeyword(list)) continue;
      list.forEach((cap, k) => {
        if (isKnownCapability(cap)) return;
        const upper = cap.toUpperCase();
        const guess = isKnownCapability(upper) ? upper : isKnownCapability('CAP_' + upper) ? 'CAP_' + upper : undefined;
        const kw = ['all', 'none'].includes(cap.toLowerCase()) ? ` ("${cap}" is only a keyword as the list's single item)` : '';
        report(at(field, k), `unknown capability "${cap}"${guess ? ` (did you mean "${guess}"?)` : kw}`);
      });
    }

    e.rlimits?.forEach((r, k) => {
      const parsed = parseRlimit(r);
      if (typeof parsed === 'string') report(at('rlimits', k), parsed);
      else if (parsed.soft > parsed.hard) report(at('rlimits', k), `rlimit "${r}": the soft limit is above the hard limit, which the kernel refuses`);
    });

    e.tmpfs?.forEach((t, k) => {
      if (t.split(':').length > 2) report(at('tmpfs', k), `cannot parse tmpfs "${t}": too many ':' (expected PATH[:OPTION,...])`);
    });

    for (const field of ['binds', 'binds.add'] as const) {
      e[field]?.forEach((b, k) => {
        const parts = b.split(':');
        if (parts.length < 2) return report(at(field, k), `cannot parse bind "${b}": missing ':' (expected SOURCE:DESTINATION[:OPTION,...])`);
        if (parts.length > 3) return report(at(field, k), `cannot parse bind "${b}": too many ':' (expected SOURCE:DESTINATION[:OPTION,...])`);
        const source = parts[0]!;
        if (source.startsWith('/')) return;
        const vol = volumes.get(source);
        if (!vol) return report(at(field, k), `volume "${source}" is not declared in volumes (a bind source not starting with "/" names a volume)`);
        if (vol.vol.readonly && parts[2] !== 'ro') {
          report(at(field, k), `volume "${source}" is read-only, but this bind would mount it read-write (end the bind with ":ro")`);
        }
      });
    }

    e.mounts?.forEach((m, k) => {
      const r = resolveMount(m);
      if (typeof r === 'string') report(at('mounts', k), r);
      // as build/volume.go: only mounts explicitly of type bind may name volumes
      if (m.type !== 'bind' || (m.source ?? '').startsWith('/')) return;
      const source = m.source ?? '';
      const vol = volumes.get(source);
      if (!vol) return report(at('mounts', k, 'source'), `volume "${source}" is not declared in volumes (a bind mount source not starting with "/" names a volume)`);
      if (vol.vol.readonly) {
        const first = (m.options ?? []).find((o) => o === 'rw' || o === 'ro');
        if (first !== 'ro') report(at('mounts', k), `volume "${source}" is read-only, but this mount would be read-write (add the "ro" option)`);
      }
    });

    e.devices?.forEach((d, k) => {
      if (d.path === 'all') return;
      if (d.mode === undefined) return report(at('devices', k), `device ${d.path ?? ''} needs a mode (octal, e.g. "0666")`);
      if (parseOctalMode(d.mode) === undefined) report(at('devices', k, 'mode'), `cannot parse device mode "${d.mode}" as an octal number`);
    });

    checkId(e.uid, at('uid'), 'uid');
    checkId(e.gid, at('gid'), 'gid');
    e.additionalGids?.forEach((g, k) => checkId(g, at('additionalGids', k), 'additional gid'));

    const ns: Array<[keyof ImageEntry, string[]]> = [
      ['net', ['host', 'root', 'new', 'none']],
      ['ipc', ['host', 'root', 'new']],
      ['uts', ['host', 'root', 'new']],
      ['pid', ['host', 'root', 'new']],
      ['userns', ['host', 'root', 'new']],
    ];
    for (const [field, words] of ns) {
      const v = e[field];
      if (typeof v !== 'string' || v === '' || words.includes(v) || v.startsWith('/')) continue;
      report(at(field), `${field}: "${v}" is neither ${words.map((w) => `"${w}"`).join(', ')} nor the absolute path of a namespace file`);
    }
  }

  config.files?.forEach((f, i) => {
    const at = (...p: Array<string | number>): ConfigPath => ['files', i, ...p];
    if (!f.path) report(at(), 'file needs a path');
    const name = f.path ? `"${f.path}"` : `files[${i}]`;
    if (f.mode !== undefined && parseOctalMode(f.mode) === undefined) report(at('mode'), `cannot parse file mode "${f.mode}" as an octal number`);
    checkId(f.uid, at('uid'), 'uid');
    checkId(f.gid, at('gid'), 'gid');
    const kinds = [
      f.contents !== undefined && 'contents',
      !!f.source && 'source',
      !!f.metadata && 'metadata',
      f.directory === true && 'directory',
      !!f.symlink && 'symlink',
    ].filter((k): k is string => typeof k === 'string');
    if (kinds.length === 0) report(at(), `file ${name} needs one of contents, source, metadata, directory: true or symlink`);
    if (kinds.length > 1) report(at(kinds[1]!), `file ${name} sets ${kinds.join(' and ')}: use exactly one of contents, source, metadata, directory or symlink`);
    if (f.metadata && f.metadata !== 'yaml' && f.metadata !== 'json') report(at('metadata'), `unsupported metadata type "${f.metadata}" (use "yaml" or "json")`);
  });

  return problems;
}
