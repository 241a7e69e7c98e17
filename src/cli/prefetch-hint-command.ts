// `ferry prefetch <ref>` (without --files): asks the running daemon, over the prefetch-hint API, to warm its
// cache for an image; with --wait follows the job (a progress bar on a terminal, JSON lines otherwise).
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../config/load.js';
import { FerryError, InvalidArgumentError, isFerryError, type ErrorCode } from '../errors.js';
import { prefetchClient } from '../api/prefetch-client.js';
import type { ProgressMsg } from '../api/prefetch-messages.js';
import { formatBytes, Progress } from './format.js';

export interface PrefetchHintOptions {
  json?: boolean;
  wait?: boolean;
  priority?: number;
  budget?: number;
  /** Fail the job if it is not done this many ms from now. */
  deadlineMs?: number;
  workload?: string;
  /** The daemon's hint socket (default from the config). */
  socket?: string;
  /** host:port of a daemon's TCP hint API… */
  address?: string;
  /** …and the file holding its bearer token. */
  tokenFile?: string;
  config?: string;
}

function progressLine(p: ProgressMsg): string {
  const phase = p.phase.toLowerCase();
  if (p.phase === 'QUEUED' || p.phase === 'RESOLVING' || p.phase === 'INDEXING')
    return `${phase} ${p.image_ref}`;
  return (
    `${phase} ${p.image_ref}: ${p.chunks_done}/${p.chunks_total} chunks, ` +
    `${formatBytes(p.bytes_done)}/${formatBytes(p.bytes_total)} (trace: ${p.trace_origin || '-'})`
  );
}

export async function runPrefetchHint(refText: string, opts: PrefetchHintOptions): Promise<void> {
  const json = opts.json === true || !process.stdout.isTTY;
  let token: string | undefined;
  if (opts.tokenFile !== undefined) token = (await readFile(opts.tokenFile, 'utf8')).trim();
  if (opts.address === undefined && token !== undefined)
    throw new InvalidArgumentError('--token-file goes with --address (the unix socket needs no token)');
  const socketPath =
    opts.address !== undefined
      ? undefined
      : (opts.socket ?? (await loadConfig(opts.config)).paths.hintSocket);
  const client = await prefetchClient({ socketPath, address: opts.address, token });
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  try {
    const res = await client
      .hint({
        image_ref: refText,
        priority: opts.priority ?? 0,
        byte_budget: opts.budget ?? 0,
        deadline_unix_ms: opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : 0,
        workload_key: opts.workload ?? '',
      })
      .catch((e: unknown) => {
        if (isFerryError(e, 'UNAVAILABLE'))
          throw new FerryError('UNAVAILABLE', `${e.message} (is \`ferry daemon\` running?)`, { cause: e });
        throw e;
      });
    if (json) out({ event: 'hinted', jobId: res.job_id, coalesced: res.coalesced, ref: refText });
    else
      process.stdout.write(
        `prefetch job ${res.job_id} ${res.coalesced ? 'joined (already queued)' : 'queued'} for ${refText}\n`,
      );
    if (opts.wait !== true) return;

    const bar = new Progress();
    const final = await client.watch(res.job_id, (p) => {
      if (json) out({ event: 'progress', ...p });
      else bar.update(progressLine(p), p.bytes_total > 0 ? p.bytes_done / p.bytes_total : undefined);
    });
    bar.done();
    if (!json) {
      process.stdout.write(
        `${final.phase.toLowerCase()}: ${final.chunks_done}/${final.chunks_total} chunks ` +
          `(${formatBytes(final.bytes_done)}), ${final.chunks_cached} already cached, ` +
          `${final.chunks_failed} failed (trace: ${final.trace_origin || '-'})\n`,
      );
    }
    if (final.phase !== 'DONE') {
      const code = (final.error_code || 'INTERNAL') as ErrorCode;
      throw new FerryError(code, `prefetch of ${refText} ${final.phase.toLowerCase()}: ${final.error}`);
    }
  } finally {
    client.close();
  }
}
