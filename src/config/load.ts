// Loads the TOML config file, validates it against the schema and returns it resolved (resolve.ts) and frozen.
import { readFile } from 'node:fs/promises';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';

import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { renameDeprecatedKeys } from './deprecated-keys.js';
import { applyEnvOverrides } from './env-overrides.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';
import { configSchema, type FerryConfig } from './schema.js';
import { describeTomlError } from './toml-error.js';

export const DEFAULT_CONFIG_PATH = '/etc/ferry/config.toml';

/** Validates a parsed object (deprecated keys renamed); each bad field is listed with its path. */
export function validateConfig(raw: unknown, where = 'config'): ResolvedConfig {
  const renamed = (() => {
    try {
      return renameDeprecatedKeys(raw);
    } catch (e) {
      throw new InvalidArgumentError(`${where} is invalid: ${(e as Error).message}`);
    }
  })();
  const result = configSchema.safeParse(renamed.raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InvalidArgumentError(`${where} is invalid:\n${lines.join('\n')}`, { cause: result.error });
  }
  return resolveConfig(result.data, renamed.deprecations);
}

/**
 * Reads `path` (TOML). A missing file is fine only when it is the default path: every option has a default.
 * `FERRY_<SECTION>_<KEY>` variables in `env` override the file (src/config/env-overrides.ts).
 */
export async function loadConfig(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedConfig> {
  const file = path ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && path === undefined)
      return validateConfig(applyEnvOverrides({}, env), 'config (defaults and FERRY_* variables)');
    throw new NotFoundError(`cannot read config ${file}: ${(e as Error).message}`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    // No cause: the parser's message quotes the offending lines, which may hold a password.
    throw new InvalidArgumentError(`${file} is not valid TOML: ${describeTomlError(e)}`);
  }
  return validateConfig(applyEnvOverrides(raw, env), file);
}

export function defaultConfigToml(): string {
  return configToml(configSchema.parse({}));
}

/** A config (or a redacted copy of one) as TOML; unset optional keys are left out. */
export function configToml(config: object): string {
  return stringifyToml(JSON.parse(JSON.stringify(config)) as Record<string, unknown>);
}

export type { FerryConfig, ResolvedConfig };
