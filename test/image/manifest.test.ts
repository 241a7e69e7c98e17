// parseManifest and platform selection: kinds by Content-Type, the refusals, and index entry choice.
import { describe, expect, it } from 'vitest';
import { MediaType, layerCompression, parseManifest, type ImageIndex } from '../../src/image/manifest.js';
import { hostPlatform, normalizePlatform, parsePlatform, selectManifest } from '../../src/image/platform.js';
import { FormatError, ResourceExhaustedError } from '../../src/errors.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const desc = (c: string, extra: object = {}): object => ({
  mediaType: MediaType.ociLayerGzip,
  digest: d(c),
  size: 10,
  ...extra,
});
const manifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { ...desc('c'), mediaType: MediaType.ociConfig },
  layers: [desc('1'), desc('2', { annotations: { a: 'b' } })],
};
const buf = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('parseManifest', () => {
  it('parses an OCI manifest', () => {
    const r = parseManifest(buf(manifest), `${MediaType.ociManifest}; charset=utf-8`, 'x/y:t');
    expect(r.kind).toBe('manifest');
    if (r.kind !== 'manifest') return;
    expect(r.manifest.layers).toHaveLength(2);
    expect(r.manifest.layers[1]?.annotations).toEqual({ a: 'b' });
  });

  it('parses a Docker manifest list without a mediaType field', () => {
    const list = {
      schemaVersion: 2,
      manifests: [
        desc('1', { mediaType: MediaType.dockerManifest, platform: { os: 'linux', architecture: 'amd64' } }),
      ],
    };
    const r = parseManifest(buf(list), MediaType.dockerManifestList, 'x');
    expect(r.kind).toBe('index');
  });

  it('infers the kind when Content-Type is generic', () => {
    expect(
      parseManifest(buf({ ...manifest, mediaType: undefined }), 'application/octet-stream', 'x').kind,
    ).toBe('manifest');
    expect(parseManifest(buf({ schemaVersion: 2, manifests: [] }), undefined, 'x').kind).toBe('index');
    expect(
      parseManifest(
        buf({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
        'application/json',
        'x',
      ).kind,
    ).toBe('index');
  });

  it('refuses a mediaType field disagreeing with Content-Type', () => {
    expect(() => parseManifest(buf(manifest), MediaType.ociIndex, 'reg/x:t')).toThrow(
      /disagrees with Content-Type/,
    );
  });

  it('refuses HTML, non-JSON, schema1, oversize and invalid shapes', () => {
    expect(() => parseManifest(Buffer.from('<html>login</html>'), 'text/html', 'reg/x:t')).toThrow(
      /HTML.*reg\/x:t/,
    );
    expect(() => parseManifest(Buffer.from('{nope'), MediaType.ociManifest, 'reg/x:t')).toThrow(FormatError);
    expect(() => parseManifest(Buffer.from('{nope'), MediaType.ociManifest, 'reg/x:t')).toThrow(/reg\/x:t/);
    expect(() =>
      parseManifest(buf({ schemaVersion: 1, name: 'x' }), MediaType.dockerSchema1Signed, 'x'),
    ).toThrow(/schema 1.*unsupported/);
    expect(() => parseManifest(buf({ schemaVersion: 1, name: 'x' }), 'application/json', 'x')).toThrow(
      /schema 1/,
    );
    expect(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 32), MediaType.ociManifest, 'x')).toThrow(
      ResourceExhaustedError,
    );
    expect(() =>
      parseManifest(buf({ ...manifest, layers: [{ digest: 'sha256:zz' }] }), MediaType.ociManifest, 'x'),
    ).toThrow(/invalid manifest for x: layers/);
    expect(() => parseManifest(buf([1]), MediaType.ociManifest, 'x')).toThrow(/not a JSON object/);
    expect(() => parseManifest(buf({ schemaVersion: 2 }), 'application/json', 'x')).toThrow(
      /unsupported media type/,
    );
  });

  it('keeps subject, artifactType and annotations', () => {
    const m = {
      ...manifest,
      artifactType: 'application/x.ferry',
      subject: { mediaType: MediaType.ociManifest, digest: d('e'), size: 3 },
      annotations: { k: 'v' },
    };
    const r = parseManifest(buf(m), MediaType.ociManifest, 'x');
    expect(r.kind === 'manifest' && r.manifest.subject?.digest).toBe(d('e'));
    expect(r.kind === 'manifest' && r.manifest.artifactType).toBe('application/x.ferry');
  });

  it('names layer compression by media type', () => {
    expect(layerCompression(MediaType.ociLayerZstd)).toBe('zstd');
    expect(layerCompression(MediaType.dockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MediaType.ociLayer)).toBe('none');
    expect(layerCompression(MediaType.ociConfig)).toBeUndefined();
  });
});

describe('platform', () => {
  it('normalises aliases and variants', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({
      os: 'linux',
      architecture: 'amd64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64', variant: 'v8' })).toEqual({
      os: 'linux',
      architecture: 'arm64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm' })).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux')).toBeUndefined();
  });

  it('maps the host arch', () => {
    const p = hostPlatform();
    expect(p.os).toBe(process.platform);
    if (process.arch === 'x64') expect(p.architecture).toBe('amd64');
    if (process.arch === 'arm64') expect(p.architecture).toBe('arm64');
  });

  const index = (entries: Array<[string, object | undefined, Record<string, string>?]>): ImageIndex => ({
    schemaVersion: 2,
    manifests: entries.map(([c, platform, annotations]) => ({
      mediaType: MediaType.ociManifest,
      digest: d(c) as never,
      size: 1,
      ...(platform ? { platform: platform as { os: string; architecture: string } } : {}),
      ...(annotations ? { annotations } : {}),
    })),
  });

  it('selects exact matches and skips attestations', () => {
    const idx = index([
      [
        '0',
        { os: 'unknown', architecture: 'unknown' },
        { 'vnd.docker.reference.type': 'attestation-manifest' },
      ],
      ['1', { os: 'linux', architecture: 'amd64' }],
      ['2', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
      ['3', { os: 'linux', architecture: 'arm', variant: 'v6' }],
      ['4', undefined],
    ]);
    expect(selectManifest(idx, { os: 'linux', architecture: 'amd64' })?.digest).toBe(d('1'));
    expect(selectManifest(idx, { os: 'linux', architecture: 'arm64' })?.digest).toBe(d('2'));
    expect(selectManifest(idx, { os: 'linux', architecture: 'aarch64' })?.digest).toBe(d('2'));
    expect(selectManifest(idx, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest).toBe(d('3'));
    expect(selectManifest(idx, { os: 'linux', architecture: 's390x' })).toBeUndefined();
    expect(selectManifest(idx, { os: 'unknown', architecture: 'unknown' })).toBeUndefined();
    expect(selectManifest(idx, { os: 'windows', architecture: 'amd64' })).toBeUndefined();
  });
});
