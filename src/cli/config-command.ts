// `ferry config`: prints the default configuration or validates a file.
import { defaultConfigToml, loadConfig } from '../config/load.js';

export async function runConfig(opts: { defaults?: boolean; check?: string }): Promise<void> {
  if (opts.check !== undefined) {
    await loadConfig(opts.check);
    process.stdout.write(`${opts.check}: ok\n`);
    return;
  }
  process.stdout.write(defaultConfigToml());
}
