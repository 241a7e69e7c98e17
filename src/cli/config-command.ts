// `ferry config`: prints the default configuration, validates a file, or shows the effective configuration.
import { configToml, defaultConfigToml, loadConfig } from '../config/load.js';
import { redactConfig } from '../config/redact.js';
import { configFields } from '../config/resolve.js';

export async function runConfig(opts: { defaults?: boolean; check?: string }): Promise<void> {
  if (opts.check !== undefined) {
    await loadConfig(opts.check);
    process.stdout.write(`${opts.check}: ok\n`);
    return;
  }
  process.stdout.write(defaultConfigToml());
}

/** `ferry config show`: what the loader makes of the defaults and the file, secrets redacted. */
export async function runConfigShow(opts: { json?: boolean; config?: string }): Promise<void> {
  const shown = redactConfig(configFields(await loadConfig(opts.config)));
  process.stdout.write(opts.json === true ? `${JSON.stringify(shown, null, 2)}\n` : configToml(shown));
}
