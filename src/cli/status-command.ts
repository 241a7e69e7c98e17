// `ferry status [--json]`: asks the running daemon (its status socket) what it serves and prints tables: images
// and layers (format, % fetched, how reads were served), chunk tiers, cache use, reads in flight, prefetch, peers.
import { loadConfig } from '../config/load.js';
import { fetchStatus } from '../metrics/status-client.js';
import { TIERS, type DaemonStatus } from '../metrics/status-types.js';
import { formatBytes, shortDigest, table } from './format.js';

export interface StatusCommandOptions {
  json?: boolean;
  config?: string;
  /** The status socket; default from the config (`<runDir>/ferry.sock`). */
  socket?: string;
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((part / whole) * 100).toFixed(1)}%`;
}

export function renderStatus(s: DaemonStatus): string {
  const out: string[] = [];
  out.push(
    `ferry daemon pid ${s.pid}, up ${s.uptimeSeconds} s, rss ${formatBytes(s.rssBytes)}, ` +
      `snapshotter ${s.socketPath || '(starting)'}${s.lazy ? '' : ' (lazy mounts off)'}`,
  );
  if (s.holder !== undefined)
    out.push(
      `FUSE holder ${s.holder.pid === undefined ? 'not connected' : `pid ${s.holder.pid}`} on ${s.holder.socketPath}` +
        ' (layers stay mounted across daemon restarts)',
    );
  out.push('', `images: ${s.images.length}`);
  if (s.images.length > 0)
    out.push(
      table(
        ['IMAGE', 'LAYERS'],
        s.images.map((i) => [i.ref, String(i.layers.length)]),
      ),
    );
  out.push('', `layers: ${s.layers.length}`);
  if (s.layers.length > 0) {
    out.push(
      table(
        ['LAYER', 'FORMAT', 'SIZE', 'FETCHED', 'READS', 'READ', 'MEAN MS', 'LOCAL', 'REMOTE', 'ERRORS'],
        s.layers.map((l) => [
          shortDigest(l.digest),
          `${l.format}/${l.codec}`,
          formatBytes(l.uncompressedBytes),
          `${l.fetchedPercent.toFixed(1)}%`,
          String(l.reads),
          formatBytes(l.readBytes),
          l.meanReadMs.toFixed(2),
          String(l.servedLocalChunks),
          String(l.servedFetchedChunks),
          String(l.readErrors),
        ]),
      ),
    );
  }
  const served = TIERS.reduce((a, t) => a + s.tiers[t].bytes, 0);
  out.push('', 'chunks served by tier:');
  out.push(
    table(
      ['TIER', 'CHUNKS', 'BYTES', 'SHARE'],
      TIERS.map((t) => [
        t,
        String(s.tiers[t].chunks),
        formatBytes(s.tiers[t].bytes),
        pct(s.tiers[t].bytes, served),
      ]),
    ),
  );
  out.push('', 'cache:');
  out.push(
    table(
      ['TIER', 'USED', 'CAPACITY', 'CHUNKS', 'HIT RATE', 'EVICTIONS'],
      s.cache.map((c) => [
        c.tier,
        formatBytes(c.bytes),
        c.maxBytes === undefined ? '-' : `${formatBytes(c.maxBytes)} (${pct(c.bytes, c.maxBytes)})`,
        String(c.entries),
        pct(c.hits, c.hits + c.misses),
        String(c.evictions),
      ]),
    ),
  );
  out.push(
    '',
    `reads in flight: ${s.reads.inFlight}, hung (> ${s.reads.hungReadSeconds} s): ${s.reads.hung}` +
      (s.reads.inFlight > 0 ? `, oldest ${s.reads.oldestMs} ms` : ''),
  );
  out.push('', `prefetch jobs: ${s.prefetch.length}`);
  if (s.prefetch.length > 0) {
    out.push(
      table(
        ['IMAGE', 'PHASE', 'CHUNKS', 'BYTES', 'QUEUED'],
        s.prefetch.map((p) => [
          p.image,
          p.phase,
          `${p.chunksDone}/${p.chunksTotal}`,
          `${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`,
          String(p.queueDepth),
        ]),
      ),
    );
  }
  if (s.peers !== undefined) {
    out.push('', `peers: ${s.peers.length}`);
    if (s.peers.length > 0)
      out.push(
        table(
          ['PEER', 'STATE'],
          s.peers.map((p) => [p.peer, p.state]),
        ),
      );
  }
  return `${out.join('\n')}\n`;
}

export async function runStatus(opts: StatusCommandOptions): Promise<void> {
  let socket = opts.socket;
  if (socket === undefined) {
    socket = (await loadConfig(opts.config)).paths.statusSocket;
  }
  const status = await fetchStatus(socket);
  process.stdout.write(opts.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
}
