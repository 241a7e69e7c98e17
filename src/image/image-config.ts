// The part of an OCI/Docker image config Ferry checks: the layers' diffIDs (uncompressed digests) and the chain
// IDs containerd names committed snapshots by. Pure: parsing and hashing only.
import { z } from 'zod';
import { FormatError } from '../errors.js';
import { isDigest, sha256, type Digest } from './digest.js';

/** Configs are small JSON documents; a bigger one is hostile, not an image. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

const ConfigSchema = z.object({
  rootfs: z.object({
    type: z.string(),
    diff_ids: z.array(z.string().refine(isDigest, { message: 'invalid digest' })),
  }),
});

/** The config's JSON, within the size a config can have. */
function configJson(bytes: Buffer, where: string): unknown {
  if (bytes.length > MAX_CONFIG_BYTES)
    throw new FormatError(`${where}: image config is ${bytes.length} bytes`);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new FormatError(`${where}: image config is not JSON`, { cause: e });
  }
}

/** The diffIDs of an image config, bottom layer first. */
export function parseDiffIds(bytes: Buffer, where: string): Digest[] {
  const r = ConfigSchema.safeParse(configJson(bytes, where));
  if (!r.success) throw new FormatError(`${where}: image config has no valid rootfs.diff_ids`);
  if (r.data.rootfs.type !== 'layers') {
    throw new FormatError(`${where}: image config rootfs.type is ${JSON.stringify(r.data.rootfs.type)}`);
  }
  return r.data.rootfs.diff_ids;
}

/** chainID(L0..Ln) per the OCI image spec: chainID(L0) = diffID(L0); then sha256(parent + " " + diffID). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const parent = out[out.length - 1];
    out.push(parent === undefined ? d : sha256(`${parent} ${d}`));
  }
  return out;
}

/** The os/architecture(/variant) an image config declares, for listing its manifest in an image index. */
export function parseConfigPlatform(
  bytes: Buffer,
): { os: string; architecture: string; variant?: string } | undefined {
  try {
    const c = JSON.parse(bytes.toString('utf8')) as {
      os?: unknown;
      architecture?: unknown;
      variant?: unknown;
    };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    return {
      os: c.os,
      architecture: c.architecture,
      ...(typeof c.variant === 'string' ? { variant: c.variant } : {}),
    };
  } catch {
    return undefined;
  }
}

/** What an image runs: its config's Entrypoint, Cmd, Env and WorkingDir (absent fields are empty). */
export interface RunConfig {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly env: readonly string[];
  readonly workingDir: string;
}

const strings = z.array(z.string()).nullish();
const RunSchema = z.object({
  config: z
    .object({ Entrypoint: strings, Cmd: strings, Env: strings, WorkingDir: z.string().nullish() })
    .nullish(),
});

/** The run settings of an image config; a FormatError when it is not a config or they are not strings. */
export function parseRunConfig(bytes: Buffer, where: string): RunConfig {
  const r = RunSchema.safeParse(configJson(bytes, where));
  if (!r.success)
    throw new FormatError(`${where}: image config has an invalid Entrypoint/Cmd/Env/WorkingDir`);
  const c = r.data.config;
  return {
    entrypoint: c?.Entrypoint ?? [],
    cmd: c?.Cmd ?? [],
    env: c?.Env ?? [],
    workingDir: c?.WorkingDir ?? '',
  };
}
