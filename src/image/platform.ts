// Platforms (os/architecture/variant): the host's, normalisation as containerd does it, and picking from an index.
import { endianness } from 'node:os';
import type { Descriptor, ImageIndex } from './manifest.js';

export interface PlatformSpec {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string | undefined;
}

const ARCH_ALIASES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  x64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  ia32: { architecture: '386' },
};

/** Normalises aliases; arm64's `v8` is the same as no variant, and bare `arm` means `v7`. */
export function normalizePlatform(p: {
  os: string;
  architecture: string;
  variant?: string | undefined;
}): PlatformSpec {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  const arch = p.architecture.toLowerCase();
  const alias = ARCH_ALIASES[arch];
  const architecture = alias?.architecture ?? arch;
  let variant = p.variant?.toLowerCase() || alias?.variant;
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'arm' && variant !== undefined && /^\d$/.test(variant)) variant = `v${variant}`;
  return variant !== undefined ? { os, architecture, variant } : { os, architecture };
}

/** The platform this process runs on, in OCI spelling. */
export function hostPlatform(): PlatformSpec {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  switch (process.arch) {
    case 'x64':
      return { os, architecture: 'amd64' };
    case 'arm64':
      return { os, architecture: 'arm64' };
    case 'ia32':
      return { os, architecture: '386' };
    case 'arm': {
      const v = (process.config.variables as Record<string, unknown>)['arm_version'];
      return {
        os,
        architecture: 'arm',
        variant: typeof v === 'string' || typeof v === 'number' ? `v${v}` : 'v7',
      };
    }
    case 'ppc64':
      return { os, architecture: endianness() === 'LE' ? 'ppc64le' : 'ppc64' };
    default:
      return normalizePlatform({ os, architecture: process.arch });
  }
}

export function formatPlatform(p: PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined ? `/${p.variant}` : ''}`;
}

/** Parses `linux/arm64`, `linux/arm/v7`. */
export function parsePlatform(s: string): PlatformSpec | undefined {
  const [os, architecture, variant, extra] = s.split('/');
  if (
    os === undefined ||
    os === '' ||
    architecture === undefined ||
    architecture === '' ||
    extra !== undefined
  ) {
    return undefined;
  }
  return normalizePlatform({ os, architecture, variant });
}

/** buildx attestation manifests sit in the index with platform unknown/unknown. */
export function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    d.platform?.os === 'unknown' ||
    d.platform?.architecture === 'unknown'
  );
}

const ARM_ORDER = ['v8', 'v7', 'v6', 'v5'];

/**
 * The index entry for `platform`: an exact os/arch/variant match first; for 32-bit arm an older variant the
 * CPU can also run. Attestation entries and entries without a platform are never chosen.
 */
export function selectManifest(index: ImageIndex, platform: PlatformSpec): Descriptor | undefined {
  const want = normalizePlatform(platform);
  const candidates = index.manifests.filter((d) => d.platform !== undefined && !isAttestation(d));
  const norm = (d: Descriptor): PlatformSpec | undefined =>
    d.platform ? normalizePlatform(d.platform) : undefined;
  const exact = candidates.find((d) => {
    const p = norm(d);
    return (
      p !== undefined &&
      p.os === want.os &&
      p.architecture === want.architecture &&
      p.variant === want.variant
    );
  });
  if (exact !== undefined || want.architecture !== 'arm' || want.variant === undefined) return exact;
  const from = ARM_ORDER.indexOf(want.variant);
  if (from < 0) return undefined;
  for (const variant of ARM_ORDER.slice(from + 1)) {
    const found = candidates.find((d) => {
      const p = norm(d);
      return p !== undefined && p.os === want.os && p.architecture === 'arm' && p.variant === variant;
    });
    if (found !== undefined) return found;
  }
  return undefined;
}
