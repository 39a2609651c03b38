// Image references, parsed and normalised exactly as docker/distribution's `reference`
// package does (ParseNormalizedNamed + TagNameOnly): `alpine` is
// `docker.io/library/alpine:latest`, `localhost/x` and `host:5000/x` keep their registry,
// and a reference may carry both a tag and a digest (the digest wins when pulling).
import {TskitError} from '../errors.ts';

export interface ImageReference {
  /** Registry host, with port when one was given: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/alpine`. */
  path: string;
  /** Tag; `latest` when the reference named neither a tag nor a digest. */
  tag?: string;
  /** `algorithm:hex` when the reference is pinned. */
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar of github.com/distribution/reference (regexp.go), piece by piece.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6Address = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainNameComponent}(?:\\.${domainNameComponent})*|${ipv6Address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

const referenceRegexp = new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredIdentifier = /^[a-f0-9]{64}$/;
const anchoredDomainAndPort = new RegExp(`^${domainAndPort}$`);
const anchoredRemoteName = new RegExp(`^${remoteName}$`);
const anchoredTag = new RegExp(`^${tagPattern}$`);

/** Digest algorithms go-digest accepts, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS: Readonly<Record<string, number>> = {sha256: 64, sha384: 96, sha512: 128};

function invalid(input: string, reason: string): TskitError {
  return new TskitError(`invalid image reference ${JSON.stringify(input)}: ${reason}`);
}

/** Checks `algorithm:hex` the way go-digest does; returns the reason it is bad, or undefined. */
export function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon <= 0) return 'a digest is algorithm:hex, e.g. sha256:<64 hex digits>';
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_ALGORITHMS[algorithm];
  if (length === undefined) return `unsupported digest algorithm ${JSON.stringify(algorithm)} (use sha256, sha384 or sha512)`;
  if (!new RegExp(`^[a-f0-9]{${length}}$`).test(hex)) return `a ${algorithm} digest is ${length} lowercase hex digits`;
  return undefined;
}

/**
 * Parses and normalises a reference (`alpine`, `linuxkit/init:v1.2.0`,
 * `host:5000/a/b@sha256:...`). Throws a TskitError naming the reference and what is wrong.
 */
export function parseReference(input: string): ImageReference {
  if (input === '') throw invalid(input, 'repository name must have at least one component');
  if (anchoredIdentifier.test(input)) {
    throw invalid(input, 'a bare 64-hex-digit string is an image id, not a repository name');
  }
  const {domain, remainder} = splitDockerDomain(input);
  const tagSeparator = remainder.indexOf(':');
  const atSeparator = remainder.indexOf('@');
  let nameEnd = remainder.length;
  if (tagSeparator >= 0) nameEnd = tagSeparator;
  if (atSeparator >= 0 && atSeparator < nameEnd) nameEnd = atSeparator;
  const repository = remainder.slice(0, nameEnd);
  if (repository.toLowerCase() !== repository) throw invalid(input, `repository name ${JSON.stringify(repository)} must be lowercase`);

  const full = `${domain}/${remainder}`;
  const match = referenceRegexp.exec(full);
  if (!match) throw invalid(input, explainMismatch(domain, remainder));
  const [, name = '', tag, digest] = match;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) throw invalid(input, problem);
  }
  const path = name.slice(domain.length + 1);
  const ref: ImageReference = {domain, path};
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  // TagNameOnly: a name with neither tag nor digest means :latest.
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = 'latest';
  return ref;
}

function splitDockerDomain(name: string): {domain: string; remainder: string} {
  const slash = name.indexOf('/');
  if (slash < 0) return {domain: DOCKER_HUB, remainder: OFFICIAL_PREFIX + name};
  const maybeDomain = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (maybeDomain === 'localhost') {
    [domain, remainder] = [maybeDomain, rest];
  } else if (maybeDomain === LEGACY_DOCKER_HUB) {
    [domain, remainder] = [DOCKER_HUB, rest];
  } else if (/[.:]/.test(maybeDomain)) {
    [domain, remainder] = [maybeDomain, rest];
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    // Namespaces are lowercase, so an uppercase first element must be a host name.
    [domain, remainder] = [maybeDomain, rest];
  } else {
    [domain, remainder] = [DOCKER_HUB, name];
  }
  if (domain === DOCKER_HUB && !remainder.slice(0, firstOf(remainder, ':@')).includes('/')) {
    remainder = OFFICIAL_PREFIX + remainder;
  }
  return {domain, remainder};
}

function firstOf(text: string, chars: string): number {
  let index = text.length;
  for (const c of chars) {
    const at = text.indexOf(c);
    if (at >= 0 && at < index) index = at;
  }
  return index;
}

/** Says which part of a reference that failed the grammar is wrong. */
function explainMismatch(domain: string, remainder: string): string {
  if (!anchoredDomainAndPort.test(domain)) return `registry host ${JSON.stringify(domain)} is not a valid host[:port]`;
  const at = remainder.indexOf('@');
  const beforeDigest = at >= 0 ? remainder.slice(0, at) : remainder;
  const digest = at >= 0 ? remainder.slice(at + 1) : undefined;
  const colon = beforeDigest.indexOf(':');
  const repository = colon >= 0 ? beforeDigest.slice(0, colon) : beforeDigest;
  const tag = colon >= 0 ? beforeDigest.slice(colon + 1) : undefined;
  if (!anchoredRemoteName.test(repository)) {
    return `repository name ${JSON.stringify(repository)} must be lowercase letters, digits and separators (. _ __ -) in /-separated components`;
  }
  if (tag !== undefined && !anchoredTag.test(tag)) {
    return `tag ${JSON.stringify(tag)} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`;
  }
  if (digest !== undefined) return digestProblem(digest) ?? `digest ${JSON.stringify(digest)} is malformed`;
  return 'invalid reference format';
}

/** The canonical text of a reference: `docker.io/library/alpine:3.20@sha256:...`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Parses and re-formats: the form the cache records (`alpine` -> `docker.io/library/alpine:latest`). */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** `domain/path`, without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** True when the reference names a digest, so its content can never change. */
export function isPinned(ref: string | ImageReference): boolean {
  return (typeof ref === 'string' ? parseReference(ref) : ref).digest !== undefined;
}

/** The same repository with another tag or digest. */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return {domain: ref.domain, path: ref.path, ...(ref.tag !== undefined ? {tag: ref.tag} : {}), digest};
}

/** Registry host without the port (for loopback checks and credential lookups). */
export function hostWithoutPort(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(0, domain.indexOf(']') + 1);
  if (domain.indexOf(':') !== domain.lastIndexOf(':')) return domain; // a bare IPv6 address
  const colon = domain.lastIndexOf(':');
  return colon >= 0 ? domain.slice(0, colon) : domain;
}
