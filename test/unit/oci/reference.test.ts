import {describe, expect, it} from 'vitest';
import {TskitError} from '../../../src/errors.ts';
import {formatReference, isPinned, normalizeReference, parseReference} from '../../../src/oci/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference normalises like docker/distribution', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['library/alpine', 'docker.io/library/alpine:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/alpine:edge', 'docker.io/library/alpine:edge'],
    ['index.docker.io/foo/bar', 'docker.io/foo/bar:latest'],
    ['linuxkit/init:v1.2.0', 'docker.io/linuxkit/init:v1.2.0'],
    ['foo/bar/baz', 'docker.io/foo/bar/baz:latest'],
    ['localhost/foo', 'localhost/foo:latest'],
    ['localhost:5000/foo/bar:1', 'localhost:5000/foo/bar:1'],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000/a/b:latest'],
    ['[::1]:5000/a', '[::1]:5000/a:latest'],
    ['example.com/a', 'example.com/a:latest'],
    ['Example.COM/a', 'Example.COM/a:latest'],
    ['Uppercase/lowercase:tag', 'Uppercase/lowercase:tag'],
    ['h.st/a__b.c-d---e:T_a.g-1', 'h.st/a__b.c-d---e:T_a.g-1'],
    ['host/a', 'docker.io/host/a:latest'],
    [`alpine@${D}`, `docker.io/library/alpine@${D}`],
    [`alpine:3.20@${D}`, `docker.io/library/alpine:3.20@${D}`],
    [`host:5000/a/b@${D}`, `host:5000/a/b@${D}`],
    [`host.example/a@sha512:${'b'.repeat(128)}`, `host.example/a@sha512:${'b'.repeat(128)}`],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeReference(input)).toBe(expected);
    // Normalising is idempotent.
    expect(normalizeReference(expected)).toBe(expected);
  });

  it('splits domain, path, tag and digest', () => {
    expect(parseReference(`host:5000/a/b:t@${D}`)).toEqual({domain: 'host:5000', path: 'a/b', tag: 't', digest: D});
    expect(parseReference('alpine')).toEqual({domain: 'docker.io', path: 'library/alpine', tag: 'latest'});
    expect(parseReference(`alpine@${D}`)).toEqual({domain: 'docker.io', path: 'library/alpine', digest: D});
  });

  it('formats back', () => {
    expect(formatReference({domain: 'h', path: 'p', digest: D})).toBe(`h/p@${D}`);
  });

  it.each([
    ['', 'at least one component'],
    ['UPPER', 'must be lowercase'],
    ['foo/Upper', 'must be lowercase'],
    ['foo:', 'tag'],
    [':tag', 'repository name'],
    ['foo/../bar', 'repository name'],
    ['-foo', 'repository name'],
    ['foo/bar_', 'repository name'],
    ['foo:-tag', 'tag'],
    [`foo:${'t'.repeat(129)}`, 'tag'],
    ['foo@sha256:abc', 'a sha256 digest is 64 lowercase hex digits'],
    [`foo@sha256:${'A'.repeat(64)}`, 'lowercase hex'],
    [`foo@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
    [`foo@sha256:${'a'.repeat(63)}`, '64 lowercase hex'],
    ['a'.repeat(64), 'image id'],
    [`host/${'a'.repeat(260)}`, 'not be more than 255'],
    ['ho_st:5000/foo', 'registry host'],
    ['[fe80::1%eth0]:5000/foo', 'registry host'],
  ])('rejects %j (%s)', (input, reason) => {
    let error: unknown;
    try {
      parseReference(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TskitError);
    expect((error as Error).message).toContain(JSON.stringify(input));
    expect((error as Error).message).toContain(reason);
  });

  it('isPinned is true only with a digest', () => {
    expect(isPinned('alpine:3.20')).toBe(false);
    expect(isPinned(`alpine@${D}`)).toBe(true);
    expect(isPinned(`alpine:3.20@${D}`)).toBe(true);
    expect(isPinned(parseReference('localhost:5000/x'))).toBe(false);
  });
});
