// Flags every command that touches images shares (`cache *`, `build`), and their
// translation into cache and registry options, so all commands spell and read them alike.
import {readFile} from 'node:fs/promises';
import {Flags} from '@oclif/core';
import {TskitError} from '../errors.ts';
import type {Emit} from '../events.ts';
import {resolveCacheDir} from '../oci/cache.ts';
import {parseMirrors, splitList} from '../oci/endpoints.ts';
import {platformForArch, SUPPORTED_ARCHITECTURES} from '../oci/platform.ts';
import type {RegistryClientOptions} from '../oci/registry.ts';
import type {Platform} from '../oci/types.ts';
import {parseDuration} from '../run/duration.ts';

export const cacheDirFlags = {
  'cache-dir': Flags.string({
    description: 'Directory of the image cache (an OCI image layout). Default: $TSKIT_CACHE, else $XDG_CACHE_HOME/tskit, else ~/.cache/tskit',
    aliases: ['cache'],
    helpValue: 'DIR',
  }),
};

export const registryFlags = {
  mirror: Flags.string({
    description:
      'Mirror for pulling images: REGISTRY=URL for one registry (docker.io also covers index.docker.io and registry-1.docker.io) or URL for all others; URL starts with http:// or https://. Repeatable; also read from $TSKIT_MIRROR (comma/space separated), flags take precedence',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: '[REGISTRY=]URL',
  }),
  'insecure-registry': Flags.string({
    description:
      'Allow plain http and unverified TLS for this registry host (host or host:port). Loopback registries are allowed without it. Repeatable; also $TSKIT_INSECURE_REGISTRIES (comma separated)',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'HOST[:PORT]',
  }),
  'cert-file': Flags.string({
    description: 'PEM file of extra CA certificates for registries (added to the bundled roots). Repeatable',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'FILE',
  }),
};

/** For commands that download images (`build`, `cache pull`). */
export const downloadFlags = {
  timeout: Flags.string({
    description: 'Longest time one blob or manifest download may take, retries included (90s, 5m, 1h, or seconds). Default: 10m',
    helpValue: 'DURATION',
  }),
};

export const pullFlags = {
  pull: Flags.boolean({
    description: 'Resolve tag references at the registry again even when the cache has them (digest-pinned references never change)',
    default: false,
  }),
};

export const jsonFlags = {
  json: Flags.boolean({description: 'Print events and the result as JSON lines on stdout', default: false}),
};

export const ARCH_DESCRIPTION = `Architecture to select from multi-platform images: ${SUPPORTED_ARCHITECTURES.join(', ')} (x86_64 and aarch64 are accepted)`;

export const archFlag = Flags.string({description: ARCH_DESCRIPTION, helpValue: 'ARCH'});

export interface RegistryFlagValues {
  mirror?: string[];
  'insecure-registry'?: string[];
  'cert-file'?: string[];
  timeout?: string;
}

/** Registry client options from the shared flags and the environment (flags win over env). */
export async function registryOptionsFromFlags(flags: RegistryFlagValues, emit?: Emit, env: NodeJS.ProcessEnv = process.env): Promise<RegistryClientOptions> {
  // Later entries override earlier ones, so the environment goes first.
  const mirrors = parseMirrors([...splitList(env.TSKIT_MIRROR), ...(flags.mirror ?? [])]);
  const insecureRegistries = [...splitList(env.TSKIT_INSECURE_REGISTRIES), ...(flags['insecure-registry'] ?? [])];
  const caCertificates: string[] = [];
  for (const file of flags['cert-file'] ?? []) {
    try {
      caCertificates.push(await readFile(file, 'utf8'));
    } catch (error) {
      throw new TskitError(`cannot read certificate file ${file}: ${(error as Error).message}`);
    }
  }
  const deadlineMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout, '--timeout');
  if (deadlineMs !== undefined && deadlineMs <= 0) throw new TskitError('--timeout must be more than zero', {exitCode: 2});
  return {
    mirrors,
    insecureRegistries,
    ...(caCertificates.length ? {caCertificates} : {}),
    ...(emit ? {emit} : {}),
    ...(deadlineMs !== undefined ? {deadlineMs} : {}),
  };
}

export function cacheDirFromFlags(flags: {'cache-dir'?: string}, env: NodeJS.ProcessEnv = process.env): string {
  return resolveCacheDir(flags['cache-dir'], env);
}

/** Platforms from repeated --arch values (the host's architecture when none is given). */
export function platformsFromArchFlags(values: string[] | string | undefined): Platform[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  if (list.length === 0) return [platformForArch(process.arch === 'x64' ? 'amd64' : process.arch)];
  return list.map(platformForArch);
}
