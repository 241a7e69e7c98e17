// Config keys renamed to the unit-suffix convention (durations …Ms, sizes …Bytes): files and FERRY_* variables in
// the wild still use the old names, which are converted here, each named in one warning, and refused beside the new.
import { InvalidArgumentError } from '../errors.js';

export interface DeprecatedKey {
  readonly section: string;
  readonly old: string;
  readonly key: string;
  /** The old value in the new key's unit. */
  convert(v: number): number;
}

const seconds = (v: number): number => Math.round(v * 1000);

export const DEPRECATED_KEYS: readonly DeprecatedKey[] = [
  { section: 'fuse', old: 'attrTimeoutS', key: 'attrTimeoutMs', convert: seconds },
  { section: 'fuse', old: 'entryTimeoutS', key: 'entryTimeoutMs', convert: seconds },
  { section: 'fuse', old: 'negativeTimeoutS', key: 'negativeTimeoutMs', convert: seconds },
  { section: 'metrics', old: 'hungReadSeconds', key: 'hungReadMs', convert: seconds },
];

/** One deprecated key a config used: `fuse.attrTimeoutS` → `fuse.attrTimeoutMs`. */
export interface Deprecation {
  readonly old: string;
  readonly use: string;
}

/**
 * `raw` (the parsed file with FERRY_* variables applied) with every deprecated key replaced by its new key, and the
 * deprecations it used. A section that sets both the old and the new key is refused: which one was meant?
 */
export function renameDeprecatedKeys(raw: unknown): { raw: unknown; deprecations: Deprecation[] } {
  if (raw === null || typeof raw !== 'object') return { raw, deprecations: [] };
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  const deprecations: Deprecation[] = [];
  for (const d of DEPRECATED_KEYS) {
    const section = out[d.section];
    if (section === null || typeof section !== 'object' || !(d.old in section)) continue;
    const copy = Object.fromEntries(
      Object.entries(section as Record<string, unknown>).filter(([k]) => k !== d.old),
    );
    const old = `${d.section}.${d.old}`;
    const use = `${d.section}.${d.key}`;
    if (d.key in copy) throw new InvalidArgumentError(`${old} and ${use} are both set: keep only ${use}`);
    const v = (section as Record<string, unknown>)[d.old];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new InvalidArgumentError(`${old}: expected a number (and it is deprecated: use ${use})`);
    copy[d.key] = d.convert(v);
    out[d.section] = copy;
    deprecations.push({ old, use });
  }
  return { raw: out, deprecations };
}
