// Syntax check of image references at validate time, and LinuxKit's expansion of them.
// LinuxKit itself only parses references loosely when loading (containerd's reference.Parse
// accepts nearly anything); a reference the registry grammar rejects fails later, when the
// image is pulled. tskit reports it up front, using the grammar of
// github.com/distribution/reference (what docker and registries accept).

const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const domainRe = new RegExp(`^${domainAndPort}$`);
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagRe = new RegExp(`^${tagPattern}$`);
const digestRe = new RegExp(`^${digestPattern}$`);

const DIGEST_HEX_LENGTH: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128};

/**
 * LinuxKit's util.ReferenceExpand: `redis` -> `docker.io/library/redis`, `foo/bar` ->
 * `docker.io/foo/bar`; no tag is added. For every reference that passes
 * checkImageReference this is also what LinuxKit's UpdateImages writes into metadata
 * (containerd's reference.Parse + String() round-trips such references unchanged).
 */
export function expandReference(ref: string): string {
  const parts = ref.split('/');
  if (parts.length === 1) return `docker.io/library/${ref}`;
  if (parts.length === 2) {
    const first = parts[0]!;
    if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return `docker.io/${ref}`;
  }
  return ref;
}

/** Returns why `ref` is not a valid image reference, or undefined when it is. */
export function checkImageReference(ref: string): string | undefined {
  if (ref === '') return 'image reference is empty';
  if (ref.startsWith('@pkg:')) return 'LinuxKit package templates (@pkg:...) are not supported by tskit';
  if (ref.includes('://')) return 'an image reference has no URL scheme (remove "...://")';
  if (/\s/.test(ref)) return 'an image reference cannot contain whitespace';
  const expanded = expandReference(ref);
  let rest = expanded;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  if (slash < 0) return 'invalid reference format';
  const domain = rest.slice(0, slash);
  const path = rest.slice(slash + 1);
  if (!domainRe.test(domain)) return `invalid registry host "${domain}"`;
  if (path !== path.toLowerCase()) return 'repository name must be lowercase';
  if (!pathRe.test(path)) return `invalid repository name "${path}"`;
  if (rest.length > 255) return 'repository name must not be more than 255 characters';
  if (tag !== undefined && !tagRe.test(tag)) return `invalid tag "${tag}"`;
  if (digest !== undefined) {
    if (!digestRe.test(digest)) return `invalid digest "${digest}"`;
    const [alg, hex] = digest.split(':') as [string, string];
    const want = DIGEST_HEX_LENGTH[alg];
    if (want === undefined) return `unsupported digest algorithm "${alg}"`;
    if (hex.length !== want || hex !== hex.toLowerCase()) return `invalid ${alg} digest: want ${want} lowercase hex digits`;
  }
  return undefined;
}
