// Where requests for a registry go: the registry itself or a mirror (LinuxKit's
// `--mirror REGISTRY=URL` and `--mirror URL`), and whether plain http is allowed there.
// https is the rule; http only for loopback hosts and hosts the user names as insecure,
// decided before any connection is made.
import {isIP} from 'node:net';
import {TskitError} from '../errors.ts';
import {DOCKER_HUB, hostWithoutPort} from './reference.ts';

/** docker.io's registry API lives on another host. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/**
 * How to reach a registry: https with certificate checks; 'https-or-http' tries https and
 * falls back to http (loopback and --insecure-registry hosts, as Docker does); 'http' only for
 * mirrors given as http:// URLs on hosts where http is allowed.
 */
export type SchemePolicy = 'https' | 'https-or-http' | 'http';

export interface Endpoint {
  /** The registry named in the image reference (docker.io, 127.0.0.1:5000). */
  registry: string;
  /** host[:port] requests go to. */
  host: string;
  scheme: SchemePolicy;
  /** Skip TLS certificate checks (only for hosts named with --insecure-registry). */
  insecureTls: boolean;
  /** Repository prefix on a mirror given as URL with a path (http://mirror/prefix). */
  pathPrefix: string;
  /** The mirror URL when this endpoint is a mirror. */
  mirror?: string;
}

/** Splits TSKIT_MIRROR-style lists (commas or spaces). */
export function splitList(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((item) => item !== '');
}

/**
 * Parses mirror specs, later entries overriding earlier ones (so pass env entries first,
 * flags after): `REGISTRY=URL` mirrors one registry, a bare `URL` every registry without
 * its own mirror. A docker.io mirror also serves index.docker.io and registry-1.docker.io.
 */
export function parseMirrors(specs: string[]): Map<string, string> {
  const mirrors = new Map<string, string>();
  for (const spec of specs) {
    if (spec === '') continue;
    const equals = spec.indexOf('=');
    const [key, value] = equals >= 0 ? [spec.slice(0, equals), spec.slice(equals + 1)] : ['*', spec];
    if (!/^https?:\/\//.test(value)) throw new TskitError(`mirror ${JSON.stringify(value)} must start with http:// or https://`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new TskitError(`mirror ${JSON.stringify(value)} is not a valid URL`);
    }
    if (url.search || url.hash || url.username || url.password) {
      throw new TskitError(`mirror ${JSON.stringify(redactUrl(value))} must be scheme://host[:port][/path], without credentials, query or fragment`);
    }
    const registry = key.replace(/\/+$/, '');
    if (registry === '') throw new TskitError(`mirror spec ${JSON.stringify(spec)} names no registry before '='`);
    const targets = DOCKER_HUB_ALIASES.includes(registry) ? DOCKER_HUB_ALIASES : [registry];
    for (const target of targets) mirrors.set(target, value);
  }
  return mirrors;
}

export function isLoopbackHost(host: string): boolean {
  const bare = hostWithoutPort(host).replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || bare === '0:0:0:0:0:0:0:1';
  return false;
}

/** Normalises an --insecure-registry entry: strips a scheme and trailing slashes, lowercases. */
function normalizeInsecure(entry: string): string {
  return entry.replace(/^https?:\/\//, '').replace(/\/+$/, '').toLowerCase();
}

export interface EndpointOptions {
  /** From parseMirrors. */
  mirrors?: Map<string, string>;
  /** host or host:port entries; a bare host allows every port. */
  insecureRegistries?: string[];
}

export class EndpointResolver {
  private readonly mirrors: Map<string, string>;
  private readonly insecure: Set<string>;

  constructor(options: EndpointOptions = {}) {
    this.mirrors = options.mirrors ?? new Map();
    this.insecure = new Set((options.insecureRegistries ?? []).map(normalizeInsecure));
  }

  /** True when the user named this host (with or without port) as insecure. */
  isNamedInsecure(host: string): boolean {
    const lower = host.toLowerCase();
    return this.insecure.has(lower) || this.insecure.has(hostWithoutPort(lower));
  }

  /** Whether plain http may be used for this host at all. */
  httpAllowed(host: string): boolean {
    return isLoopbackHost(host) || this.isNamedInsecure(host);
  }

  resolve(registry: string): Endpoint {
    const mirror = this.mirrors.get(registry) ?? this.mirrors.get('*');
    if (mirror !== undefined && mirror !== registry) return this.mirrorEndpoint(registry, mirror);
    const host = registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
    const insecure = this.httpAllowed(host);
    return {registry, host, scheme: insecure ? 'https-or-http' : 'https', insecureTls: this.isNamedInsecure(host), pathPrefix: ''};
  }

  private mirrorEndpoint(registry: string, mirror: string): Endpoint {
    const url = new URL(mirror);
    const host = url.host;
    const pathPrefix = url.pathname.replace(/^\/+|\/+$/g, '');
    if (url.protocol === 'http:' && !this.httpAllowed(host)) {
      throw new TskitError(
        `mirror ${mirror} for ${registry} uses plain http, which tskit only allows for loopback hosts: ` +
          `name it with --insecure-registry ${host} (or TSKIT_INSECURE_REGISTRIES) to allow it, or use https`,
      );
    }
    return {
      registry,
      host,
      scheme: url.protocol === 'http:' ? 'http' : 'https',
      insecureTls: this.isNamedInsecure(host),
      pathPrefix,
      mirror,
    };
  }
}

/** A URL safe to show: no credentials, no query (pre-signed blob URLs carry signatures there). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    const hadQuery = parsed.search !== '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString() + (hadQuery ? '?…' : '');
  } catch {
    return url.replace(/\?.*$/, '?…');
  }
}

/** How messages name an endpoint: `registry-1.docker.io`, or `mirror http://m:5000 for docker.io`. */
export function describeEndpoint(endpoint: Endpoint): string {
  return endpoint.mirror ? `mirror ${endpoint.mirror} of ${endpoint.registry}` : endpoint.registry;
}
