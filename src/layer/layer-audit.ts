// Proves that a lazily served layer is the layer its digests commit to, for indexes whose trust root does not
// prove it by construction (a TOC, a bound or signed artifact): compare every visible node of the served tree
// with the tree built from the verified blob stream, and read every file through the served index, at prefetch
// priority, hashing it against the built content digest. The first difference is an IntegrityError.
import { IntegrityError } from '../errors.js';
import { DigestHasher } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { LayerReader } from './layer-reader.js';
import { LayerTree, type LayerNode } from './layer-tree.js';

const READ_BYTES = 4 << 20;
/** What an eStargz blob's tar holds for its readers (TOC, landmarks), never shown by a TOC-served tree. */
const ESTARGZ_OWN = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);

export interface LayerAuditOptions {
  /** The index the mount serves. */
  served: LayerIndex;
  /** An index built from the blob, its layer digest and diffID verified on the way. */
  truth: LayerIndex;
  source: ChunkSource;
  signal?: AbortSignal | undefined;
}

export async function auditLayer(o: LayerAuditOptions): Promise<void> {
  const served = LayerTree.fromIndex(o.served);
  const truth = LayerTree.fromIndex(o.truth);
  const label = `layer ${o.served.layerDigest}`;
  const servedPaths = new Map(served.paths());
  for (const [path, want] of truth.paths()) {
    if (o.served.format === 'estargz' && ESTARGZ_OWN.has(path)) continue;
    const got = servedPaths.get(path);
    if (got === undefined)
      throw new IntegrityError(`${label}: /${path} is in the layer but not in its index`);
    servedPaths.delete(path);
    const diff = nodeDifference(got, want);
    if (diff !== undefined) throw new IntegrityError(`${label}: /${path}: index says ${diff}`);
  }
  const extra = servedPaths.keys().next();
  if (extra.done !== true)
    throw new IntegrityError(`${label}: /${extra.value} is in the index but not in the layer`);
  // Only priority changes: the reads share the node's cache, so what the audit fetches completes the layer.
  const background: ChunkSource = {
    fetch: (req, signal) => o.source.fetch({ ...req, priority: 'prefetch', background: true }, signal),
  };
  const reader = new LayerReader({ index: o.served, source: background });
  const digests = new Map(o.truth.entries.map((e) => [e.path, e.digest]));
  for (const [path, node] of served.paths()) {
    if (node.type !== 'file' || node.path !== path) continue; // a hardlink name shares its target's content
    const hasher = new DigestHasher();
    for (let at = 0; at < node.size; at += READ_BYTES) {
      o.signal?.throwIfAborted();
      hasher.update(await reader.readFile(node, at, READ_BYTES, o.signal));
    }
    const want = digests.get(node.path);
    if (want === undefined || hasher.digest() !== want)
      throw new IntegrityError(`${label}: /${path} reads as other bytes than the layer holds`);
  }
}

function nodeDifference(got: LayerNode, want: LayerNode): string | undefined {
  const fields = [
    'path',
    'type',
    'mode',
    'uid',
    'gid',
    'size',
    'linkTarget',
    'devMajor',
    'devMinor',
    'opaque',
  ] as const;
  for (const f of fields) {
    if (got[f] !== want[f]) return `${f} ${JSON.stringify(got[f])}, the layer ${JSON.stringify(want[f])}`;
  }
  if (got.xattrs.size !== want.xattrs.size) return `${got.xattrs.size} xattrs, the layer ${want.xattrs.size}`;
  for (const [k, v] of want.xattrs) {
    if (!got.xattrs.get(k)?.equals(v)) return `another value of xattr ${k}`;
  }
  return undefined;
}
