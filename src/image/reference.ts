// Image references (`[host[:port]/]repo[:tag][@digest]`): parsing with Docker's defaults, validation, printing.
import { InvalidArgumentError } from '../errors.js';
import { isDigest, type Digest } from './digest.js';

export interface ImageReference {
  /** Registry host as written, with port; Docker Hub is `docker.io`. */
  readonly registry: string;
  /** Repository path without the host, e.g. `library/ubuntu`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
  toString(): string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Builds a reference from parts (validated); the one way to get an ImageReference with `toString`. */
export function makeReference(parts: {
  registry: string;
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
}): ImageReference {
  const { registry, repository, tag, digest } = parts;
  validateHost(registry, `${registry}/${repository}`);
  validateRepository(repository, `${registry}/${repository}`);
  if (tag !== undefined && !TAG.test(tag))
    throw bad(`${registry}/${repository}:${tag}`, `invalid tag ${JSON.stringify(tag)}`);
  if (digest !== undefined && !isDigest(digest))
    throw bad(`${registry}/${repository}@${digest}`, 'invalid digest');
  const text = `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    toString: () => text,
  };
}

/**
 * Parses `ubuntu`, `ghcr.io/org/img:tag`, `127.0.0.1:5000/a/b@sha256:...`. A first component is a host only if it
 * has a `.` or `:` or is `localhost` (Docker's rule); otherwise the registry is docker.io and one-component
 * names get `library/`. Without tag and digest the tag is `latest`.
 */
export function parseReference(s: string): ImageReference {
  if (s.length === 0) throw bad(s, 'empty reference');
  if (s !== s.trim() || /\s/.test(s)) throw bad(s, 'contains whitespace');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw bad(s, `invalid digest ${JSON.stringify(d)}`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(s, `invalid tag ${JSON.stringify(tag)}`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_ENDPOINT) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  validateHost(registry, s);
  validateRepository(repository, s);
  return makeReference({ registry, repository, tag, digest });
}

/** The same repository at another tag or digest (drops the other one). */
export function withDigest(ref: ImageReference, digest: Digest): ImageReference {
  return makeReference({ registry: ref.registry, repository: ref.repository, digest });
}

export function withTag(ref: ImageReference, tag: string): ImageReference {
  return makeReference({ registry: ref.registry, repository: ref.repository, tag });
}

/** The host to contact for a registry name: Docker Hub lives at registry-1.docker.io. */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

function validateHost(host: string, whole: string): void {
  if (!HOST.test(host)) throw bad(whole, `invalid registry host ${JSON.stringify(host)}`);
  const port = /:(\d+)$/.exec(host)?.[1];
  if (port !== undefined && (Number(port) === 0 || Number(port) > 65535))
    throw bad(whole, `invalid port ${port}`);
}

function validateRepository(repository: string, whole: string): void {
  if (repository.length === 0) throw bad(whole, 'empty repository name');
  if (repository.length > MAX_NAME_LENGTH) throw bad(whole, `repository name longer than ${MAX_NAME_LENGTH}`);
  if (repository !== repository.toLowerCase()) throw bad(whole, 'repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (!COMPONENT.test(component))
      throw bad(whole, `invalid repository component ${JSON.stringify(component)}`);
  }
}

function bad(ref: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference ${JSON.stringify(ref.slice(0, 300))}: ${why}`);
}
