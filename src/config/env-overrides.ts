// `FERRY_<SECTION>_<KEY>` environment variables over the config file (a DaemonSet sets the pod IP this way
// without rewriting its ConfigMap): the variable names are derived from the schema, so every option has one.
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';

import { InvalidArgumentError } from '../errors.js';
import { DEPRECATED_KEYS } from './deprecated-keys.js';
import { configSchema } from './schema.js';

type Leaf = 'string' | 'number' | 'boolean' | 'toml';

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable']);

function unwrap(t: z.ZodType): z.ZodType {
  let s = t;
  for (;;) {
    const def = s.def as unknown as { type: string; innerType?: z.ZodType };
    if (!WRAPPERS.has(def.type) || def.innerType === undefined) return s;
    s = def.innerType;
  }
}

/** `readAhead` → `READ_AHEAD`, `stateDir` → `STATE_DIR`. */
export function envName(section: string, key: string): string {
  const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return `FERRY_${snake(section)}_${snake(key)}`;
}

interface Option {
  section: string;
  key: string;
  leaf: Leaf;
  /** A deprecated key's variable: it replaces the file's value under the new key (renamed later). */
  replaces?: string;
}

function leafOf(t: z.ZodType): Leaf {
  const type = (unwrap(t).def as unknown as { type: string }).type;
  if (type === 'number' || type === 'boolean') return type;
  if (type === 'string' || type === 'enum') return 'string';
  return 'toml'; // arrays, records, tables: a TOML inline value
}

let table: { options: Map<string, Option>; prefixes: string[] } | undefined;

function options(): { options: Map<string, Option>; prefixes: string[] } {
  if (table !== undefined) return table;
  const map = new Map<string, Option>();
  const prefixes: string[] = [];
  for (const [section, schema] of Object.entries(configSchema.shape)) {
    const obj = unwrap(schema as z.ZodType);
    if (!(obj instanceof z.ZodObject)) continue;
    prefixes.push(envName(section, '').slice(0, -1) + '_');
    const fields: Record<string, z.ZodType> = obj.shape;
    for (const [key, field] of Object.entries(fields))
      map.set(envName(section, key), { section, key, leaf: leafOf(field) });
  }
  for (const d of DEPRECATED_KEYS)
    map.set(envName(d.section, d.old), { section: d.section, key: d.old, leaf: 'number', replaces: d.key });
  table = { options: map, prefixes };
  return table;
}

/** The value of one variable as its option's type. Messages name the variable, never the value (secrets). */
function parseValue(name: string, raw: string, leaf: Leaf): unknown {
  switch (leaf) {
    case 'string':
      return raw;
    case 'number': {
      if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) throw new InvalidArgumentError(`${name}: expected a number`);
      return Number(raw);
    }
    case 'boolean':
      if (raw === 'true' || raw === 'false') return raw === 'true';
      throw new InvalidArgumentError(`${name}: expected true or false`);
    case 'toml': {
      const text = raw.trim();
      // Lists of plain words may be given comma-separated: FERRY_P2P_PEERS=10.0.0.5:7420,10.0.0.6:7420
      if (!/^[[{]/.test(text)) return text === '' ? [] : text.split(',').map((s) => s.trim());
      try {
        return (parseToml(`v = ${text}`) as { v: unknown }).v;
      } catch {
        throw new InvalidArgumentError(`${name}: expected a TOML inline array or table`);
      }
    }
  }
}

/**
 * Applies every `FERRY_<SECTION>_<KEY>` in `env` to `raw` (the parsed file, not yet validated): the schema then
 * checks the result as it checks the file. A name under a section's prefix that is no option is an error, so a
 * typo does not silently leave the file's value in place.
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const { options: known, prefixes } = options();
  const names = Object.keys(env)
    .filter((n) => n.startsWith('FERRY_'))
    .sort();
  if (names.length === 0) return raw;
  const out: Record<string, unknown> =
    raw !== null && typeof raw === 'object' ? { ...(raw as Record<string, unknown>) } : {};
  const unknown: string[] = [];
  for (const name of names) {
    const option = known.get(name);
    if (option === undefined) {
      if (prefixes.some((p) => name.startsWith(p))) unknown.push(name);
      continue;
    }
    const section = out[option.section];
    // A deprecated key's variable replaces the file's value under the new key (unless that has a variable too).
    const replaced =
      option.replaces !== undefined && !names.includes(envName(option.section, option.replaces))
        ? option.replaces
        : undefined;
    const copy: Record<string, unknown> =
      section !== null && typeof section === 'object'
        ? Object.fromEntries(
            Object.entries(section as Record<string, unknown>).filter(([k]) => k !== replaced),
          )
        : {};
    copy[option.key] = parseValue(name, env[name] ?? '', option.leaf);
    out[option.section] = copy;
  }
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `unknown config override${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ` +
        '(FERRY_<SECTION>_<KEY>, e.g. FERRY_P2P_ADVERTISE for [p2p] advertise)',
    );
  return out;
}
