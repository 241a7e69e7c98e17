// Labels: containerd's size limit (labels/validate.go: key + value ≤ 4096 bytes) and Update's field-mask rules.
import { InvalidArgumentError } from '../errors.js';

export const MAX_LABEL_BYTES = 4096;

export function validateLabels(labels: Readonly<Record<string, string>>, where: string): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') throw new InvalidArgumentError(`${where}: label key must not be empty`);
    const bytes = Buffer.byteLength(k) + Buffer.byteLength(v);
    if (bytes > MAX_LABEL_BYTES) {
      throw new InvalidArgumentError(
        `${where}: label key and value length (${bytes} bytes) greater than maximum size (${MAX_LABEL_BYTES} bytes), key: ${k.slice(0, 64)}`,
      );
    }
  }
}

/** Drops empty values, as containerd's bolt helper writeMap does (an empty value means "no label"). */
export function withoutEmpty(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}

/**
 * Update's field mask (containerd bolt semantics): no paths or `labels` replace all labels; `labels.<k>` sets
 * that key from `given`, or deletes it when absent or empty; any other path is INVALID_ARGUMENT.
 */
export function applyLabelMask(
  current: Readonly<Record<string, string>>,
  given: Readonly<Record<string, string>>,
  paths: readonly string[],
  name: string,
): Record<string, string> {
  const labels = new Map(Object.entries(paths.length === 0 ? given : current));
  for (const p of paths) {
    if (p === 'labels') {
      labels.clear();
      for (const [k, v] of Object.entries(given)) labels.set(k, v);
    } else if (p.startsWith('labels.')) {
      const k = p.slice('labels.'.length);
      const v = given[k];
      if (v !== undefined && v !== '') labels.set(k, v);
      else labels.delete(k);
    } else {
      throw new InvalidArgumentError(
        `cannot update ${JSON.stringify(p)} field on snapshot ${JSON.stringify(name)}`,
      );
    }
  }
  return withoutEmpty(Object.fromEntries(labels));
}
