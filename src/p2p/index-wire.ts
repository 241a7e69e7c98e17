// The index request of the peer protocol: GET /index/<layer digest>?diff=…&size=…&mt=…&ref=…[&fwd=1] asks the
// layer's owner for the index it built from the blob (digest and diffID verified); `fwd=1` marks a request a
// non-owner sent on to the owner it sees. Encoding and strict parsing of the path, MAC'd like every other.
import { isDigest } from '../image/digest.js';
import { parseReference } from '../image/reference.js';
import type { PeerIndexRequest } from '../index/source-peer.js';

const MAX_REF = 1024;
const MAX_MEDIA_TYPE = 256;

export function indexPath(req: PeerIndexRequest): string {
  const q = new URLSearchParams({
    diff: req.diffId,
    size: String(req.layer.size),
    mt: req.layer.mediaType,
    ref: req.imageRef,
  });
  if (req.forwarded === true) q.set('fwd', '1');
  return `/index/${req.layer.digest}?${q.toString()}`;
}

/** The request a path names, or undefined when any part is missing or malformed. */
export function parseIndexPath(path: string): PeerIndexRequest | undefined {
  const m = /^\/index\/([a-z0-9]+:[0-9a-f]+)\?(.{1,2048})$/.exec(path);
  if (m === null || !isDigest(m[1]!)) return undefined;
  const q = new URLSearchParams(m[2]);
  const diff = q.get('diff') ?? '';
  const size = q.get('size') ?? '';
  const mediaType = q.get('mt') ?? '';
  const ref = q.get('ref') ?? '';
  if (!isDigest(diff) || !/^\d{1,15}$/.test(size)) return undefined;
  if (mediaType === '' || mediaType.length > MAX_MEDIA_TYPE || ref === '' || ref.length > MAX_REF)
    return undefined;
  try {
    parseReference(ref);
  } catch {
    return undefined;
  }
  const layer = { digest: m[1], size: Number(size), mediaType };
  return { imageRef: ref, diffId: diff, layer, ...(q.get('fwd') === '1' ? { forwarded: true } : {}) };
}
