// Runs Debian's skopeo (1.9) with a fresh, empty blob-info cache per call, so no copy can be handed blobs that an
// earlier copy made (containers/image 5.23 reuses cached blobs even when they have another compression).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const SKOPEO_BINARY = '/usr/bin/skopeo';
const UNSHARE_BINARY = '/usr/bin/unshare';

/**
 * `skopeo --insecure-policy <args>`. With euid 0 skopeo keeps its blob-info cache in /var/lib/containers/cache
 * and has no flag to move it; with any other euid it keeps it under $XDG_DATA_HOME, here a new temp dir per
 * call. A user namespace without mappings gives skopeo euid 65534 while the kernel still checks file access as
 * root, so it reads and writes the test's (root-only) temp dirs as before.
 */
export async function skopeo(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  for (const bin of [SKOPEO_BINARY, UNSHARE_BINARY]) {
    if (!existsSync(bin)) {
      throw new Error(
        `${bin} is missing: real-producer tests need Debian's skopeo and util-linux (scripts/install-deps.sh)`,
      );
    }
  }
  const home = mkdtempSync(join(tmpdir(), 'ferry-skopeo-'));
  try {
    return await run(
      UNSHARE_BINARY,
      [
        '--user',
        'env',
        `HOME=${home}`,
        `XDG_DATA_HOME=${home}/data`,
        SKOPEO_BINARY,
        '--insecure-policy',
        ...args,
      ],
      { timeout: 120_000, maxBuffer: 16 << 20 },
    );
  } catch (e) {
    const x = e as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${x.message}\nstderr: ${x.stderr ?? ''}`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
