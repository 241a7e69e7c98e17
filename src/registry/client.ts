// RegistryClient: the OCI distribution client Ferry uses to resolve images, read blobs lazily and push artifacts.
import type { Logger } from '../log.js';
import { FormatError, IntegrityError, NotFoundError } from '../errors.js';
import { DigestHasher, digestAlgorithm, isDigest, type Digest } from '../image/digest.js';
import { MAX_CONFIG_BYTES } from '../image/image-config.js';
import {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  baseMediaType,
  parseManifest,
  type Descriptor,
  type ImageManifest,
  type ParsedManifest,
} from '../image/manifest.js';
import {
  formatPlatform,
  hostPlatform,
  isAttestation,
  selectManifest,
  type PlatformSpec,
} from '../image/platform.js';
import { withDigest, type ImageReference } from '../image/reference.js';
import { Authenticator } from './auth.js';
import { RegistryBlobReader } from './blob-reader.js';
import type { CredentialSource } from './credentials.js';
import { ConfigMemo } from './config-memo.js';
import { schemeFor } from './endpoints.js';
import { HttpTransport } from './http.js';
import { pushBlob, pushManifest } from './push.js';
import { addToReferrersTag, listReferrers } from './referrers.js';
import { RegistrySession, statusError } from './session.js';

export interface RegistryClientOptions {
  log: Logger;
  credentials?: CredentialSource | undefined;
  /** Hosts (`host` or `host:port`) spoken to over plain HTTP; loopback hosts always are. */
  insecureHosts?: readonly string[] | undefined;
  /** Registry name (e.g. `docker.io`) → mirror hosts or URLs, tried in order before the origin. */
  mirrors?: Readonly<Record<string, readonly string[]>> | undefined;
  requestTimeoutMs: number;
  maxConcurrencyPerHost: number;
  retries: number;
  /** Platform picked from indexes; default the host's. */
  platform?: PlatformSpec | undefined;
  retryBaseDelayMs?: number | undefined;
  retryAfterCapMs?: number | undefined;
}

export interface RawManifest {
  readonly ref: ImageReference;
  readonly bytes: Buffer;
  /** Content-Type without parameters. */
  readonly mediaType: string | undefined;
  /** Verified against the reference's digest, or computed and checked against Docker-Content-Digest. */
  readonly digest: Digest;
}

export interface ResolvedImage {
  readonly ref: ImageReference;
  /** Digest of the platform manifest (not the index). */
  readonly manifestDigest: Digest;
  readonly manifest: ImageManifest;
  readonly manifestBytes: Buffer;
  readonly mediaType: string;
  /** Set when the reference named an index. */
  readonly indexDigest?: Digest;
  /** That index's entries (a Ferry-enabled image index also lists Ferry's index artifact there). */
  readonly indexManifests?: readonly Descriptor[];
}

export class RegistryClient {
  private readonly http: HttpTransport;
  private readonly session: RegistrySession;
  private readonly log: Logger;
  private readonly platform: PlatformSpec;
  private readonly configs = new ConfigMemo((ref, digest) => this.fetchBlob(ref, digest, MAX_CONFIG_BYTES));

  constructor(options: RegistryClientOptions) {
    this.log = options.log.child({ component: 'registry' });
    this.platform = options.platform ?? hostPlatform();
    this.http = new HttpTransport({
      log: this.log,
      requestTimeoutMs: options.requestTimeoutMs,
      maxConcurrencyPerHost: options.maxConcurrencyPerHost,
      retries: options.retries,
      ...(options.retryBaseDelayMs !== undefined ? { retryBaseDelayMs: options.retryBaseDelayMs } : {}),
      ...(options.retryAfterCapMs !== undefined ? { retryAfterCapMs: options.retryAfterCapMs } : {}),
    });
    const auth = new Authenticator({
      http: this.http,
      log: this.log,
      credentials: options.credentials,
      allowHttp: (host) => schemeFor(host, options.insecureHosts) === 'http',
    });
    this.session = new RegistrySession({
      http: this.http,
      auth,
      log: this.log,
      endpoints: { insecureHosts: options.insecureHosts, mirrors: options.mirrors },
    });
  }

  /** Resolves a reference to its platform manifest, following an index. */
  async resolve(ref: ImageReference, signal?: AbortSignal): Promise<ResolvedImage> {
    const top = await this.fetchManifest(ref, signal);
    const parsed = parseManifest(top.bytes, top.mediaType, ref.toString());
    if (parsed.kind === 'manifest') {
      return {
        ref,
        manifestDigest: top.digest,
        manifest: parsed.manifest,
        manifestBytes: top.bytes,
        mediaType: top.mediaType ?? parsed.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
      };
    }
    const chosen = selectManifest(parsed.index, this.platform);
    if (chosen === undefined) {
      const offered = parsed.index.manifests
        .filter((d) => d.platform !== undefined && !isAttestation(d))
        .map((d) => (d.platform ? formatPlatform(d.platform) : '?'));
      throw new NotFoundError(
        `${ref.toString()} has no manifest for ${formatPlatform(this.platform)} (offers: ${offered.join(', ') || 'none'})`,
      );
    }
    const childRef = withDigest(ref, chosen.digest);
    const child = await this.fetchManifest(childRef, signal);
    if (child.bytes.length !== chosen.size) {
      throw new IntegrityError(
        `manifest ${childRef.toString()} is ${child.bytes.length} bytes, index says ${chosen.size}`,
      );
    }
    const inner = parseManifest(child.bytes, child.mediaType, childRef.toString());
    if (inner.kind !== 'manifest')
      throw new FormatError(`${childRef.toString()}: nested index inside ${ref.toString()} is unsupported`);
    return {
      ref,
      manifestDigest: child.digest,
      manifest: inner.manifest,
      manifestBytes: child.bytes,
      mediaType: child.mediaType ?? chosen.mediaType,
      indexDigest: top.digest,
      indexManifests: parsed.index.manifests,
    };
  }

  /** The manifest or index bytes as served, digest-checked. */
  async fetchManifest(ref: ImageReference, signal?: AbortSignal): Promise<RawManifest> {
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const what = `manifest of ${ref.toString()}`;
    const { res } = await this.session.call({
      ref,
      method: 'GET',
      path: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      what,
      signal,
    });
    if (res.status !== 200) throw await statusError(res, what);
    const bytes = await res.body.read(MAX_MANIFEST_BYTES);
    const echoed = res.headers['docker-content-digest'];
    const expected = ref.digest ?? (echoed !== undefined && isDigest(echoed) ? echoed : undefined);
    const digest = hash(bytes, expected !== undefined ? digestAlgorithm(expected) : 'sha256');
    if (expected !== undefined && digest !== expected) {
      throw new IntegrityError(`${what}: content hashes to ${digest}, expected ${expected}`);
    }
    return { ref, bytes, mediaType: baseMediaType(res.headers['content-type']), digest };
  }

  /** A whole blob, at most maxBytes, verified against its digest. */
  async fetchBlob(
    ref: ImageReference,
    digest: Digest,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const what = `blob ${digest} of ${ref.registry}/${ref.repository}`;
    const { res } = await this.session.call({ ref, method: 'GET', path: `blobs/${digest}`, what, signal });
    if (res.status !== 200) throw await statusError(res, what);
    const bytes = await res.body.read(maxBytes);
    const got = hash(bytes, digestAlgorithm(digest));
    if (got !== digest) throw new IntegrityError(`${what}: content hashes to ${got}`);
    return bytes;
  }

  /** The image's config blob, verified; fetched once for every part of a mount (or Prepare) that needs it. */
  imageConfig(image: ResolvedImage, signal?: AbortSignal): Promise<Buffer> {
    return this.configs.get(image.ref, image.manifest.config.digest, signal);
  }

  /** Random access to a blob through Range requests. */
  blobReader(ref: ImageReference, digest: Digest, knownSizeBytes?: number): RegistryBlobReader {
    return new RegistryBlobReader({ session: this.session, log: this.log, ref, digest, knownSizeBytes });
  }

  /** Uploads a blob unless the registry has it; the descriptor's mediaType is application/octet-stream. */
  pushBlob(ref: ImageReference, data: Buffer, signal?: AbortSignal): Promise<Descriptor> {
    return pushBlob(this.session, ref, data, signal);
  }

  /**
   * Stores a manifest under a tag or its digest. A manifest with a `subject` is also listed in the subject's
   * referrers tag when the registry does not index referrers itself (no `OCI-Subject` in the answer).
   */
  async pushManifest(
    ref: ImageReference,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<Digest> {
    const { digest, subjectAccepted } = await pushManifest(
      this.session,
      ref,
      reference,
      bytes,
      mediaType,
      signal,
    );
    if (!subjectAccepted) {
      // The registry accepted the bytes; a shape we cannot read just means there is no subject to list.
      const parsed = tryParse(bytes, mediaType, `${ref.registry}/${ref.repository}@${digest}`);
      const body =
        parsed === undefined ? undefined : parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
      if (parsed !== undefined && body?.subject !== undefined) {
        const artifactType =
          body.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined);
        const descriptor: Descriptor = {
          mediaType,
          digest,
          size: bytes.length,
          ...(artifactType !== undefined ? { artifactType } : {}),
          ...(body.annotations !== undefined ? { annotations: body.annotations } : {}),
        };
        await addToReferrersTag(this.session, ref, body.subject.digest, descriptor, signal);
        this.log.debug({ repo: ref.repository, subject: body.subject.digest }, 'updated referrers tag');
      }
    }
    return digest;
  }

  /** Manifests that name `subject` as their subject, optionally only of one artifactType. */
  referrers(
    ref: ImageReference,
    subject: Digest,
    artifactType?: string,
    signal?: AbortSignal,
  ): Promise<Descriptor[]> {
    return listReferrers(this.session, ref, subject, artifactType, signal);
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.http.close();
  }
}

function hash(bytes: Buffer, algorithm: 'sha256' | 'sha512'): Digest {
  return new DigestHasher(algorithm).update(bytes).digest();
}

function tryParse(bytes: Buffer, mediaType: string, where: string): ParsedManifest | undefined {
  try {
    return parseManifest(bytes, mediaType, where);
  } catch {
    return undefined;
  }
}
