// parseReference: Docker defaults, hosts with ports, tag+digest, and clear rejections.
import { describe, expect, it } from 'vitest';
import { parseReference, registryEndpointHost, withDigest, withTag } from '../../src/image/reference.js';
import { InvalidArgumentError } from '../../src/errors.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['ubuntu', 'docker.io', 'library/ubuntu', 'latest', undefined],
    ['ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', undefined],
    ['bitnami/redis', 'docker.io', 'bitnami/redis', 'latest', undefined],
    ['docker.io/ubuntu', 'docker.io', 'library/ubuntu', 'latest', undefined],
    ['index.docker.io/library/ubuntu:1', 'docker.io', 'library/ubuntu', '1', undefined],
    ['ghcr.io/org/team/img:v1.2', 'ghcr.io', 'org/team/img', 'v1.2', undefined],
    ['127.0.0.1:5000/a/b:t', '127.0.0.1:5000', 'a/b', 't', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/app', 'localhost:5000', 'app', 'latest', undefined],
    ['[::1]:5000/app:x', '[::1]:5000', 'app', 'x', undefined],
    [`quay.io/a/b@${D}`, 'quay.io', 'a/b', undefined, D],
    [`quay.io/a/b:tag@${D}`, 'quay.io', 'a/b', 'tag', D],
    [
      'my-registry.example.com:443/a__b/c.d-e:X_1',
      'my-registry.example.com:443',
      'a__b/c.d-e',
      'X_1',
      undefined,
    ],
  ])('%s', (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
    expect(parseReference(ref.toString()).toString()).toBe(ref.toString());
  });

  it('prints the canonical form', () => {
    expect(parseReference('ubuntu').toString()).toBe('docker.io/library/ubuntu:latest');
    expect(parseReference(`a.io/x:t@${D}`).toString()).toBe(`a.io/x:t@${D}`);
    expect(String(parseReference('127.0.0.1:5000/a/b:t'))).toBe('127.0.0.1:5000/a/b:t');
  });

  it.each([
    ['', 'empty'],
    ['Ubuntu', 'lowercase'],
    ['ghcr.io/Org/img', 'lowercase'],
    ['a b', 'whitespace'],
    ['img:bad/tag', 'host'],
    ['img:', 'tag'],
    ['img:-x', 'tag'],
    ['img@sha256:abc', 'digest'],
    ['img@md5:' + 'a'.repeat(32), 'digest'],
    ['ghcr.io/', 'empty repository'],
    ['ghcr.io//x', 'component'],
    ['a..b.io:99999/x', 'host'],
    ['host.io:99999/x', 'port'],
    ['x/-y', 'component'],
    ['a'.repeat(300), 'longer'],
  ])('rejects %j', (input, why) => {
    expect(() => parseReference(input)).toThrow(InvalidArgumentError);
    expect(() => parseReference(input)).toThrow(new RegExp(why));
  });

  it('maps docker.io to registry-1.docker.io and keeps other hosts', () => {
    expect(registryEndpointHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpointHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });

  it('swaps tag and digest', () => {
    const ref = parseReference('ghcr.io/a/b:t');
    expect(withDigest(ref, D as never).toString()).toBe(`ghcr.io/a/b@${D}`);
    expect(withTag(withDigest(ref, D as never), 'u').toString()).toBe('ghcr.io/a/b:u');
  });
});
