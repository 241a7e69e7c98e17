// The raw FUSE protocol server for one read-only layer: one request frame in, one reply frame out. Stateless
// by design (node ids are LayerTree inodes, file handles only key read-ahead), so a successor process built
// from the same index answers whatever its predecessor's kernel connection sends next.
import { randomInt } from 'node:crypto';
import { AbortedError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LayerNode, LayerTree } from '../../layer/layer-tree.js';
import type { LayerReader } from '../../layer/layer-reader.js';
import { raceAbort } from '../../source/deadline.js';
import { demandReadParts } from '../demand-read.js';
import { EACCES, EINVAL, EIO, EISDIR, ENOSYS, EPROTO, EROFS, ErrnoMapper } from '../errno.js';
import { initReply } from './negotiate.js';
import {
  FOPEN_KEEP_CACHE,
  MAX_READ_BYTES,
  Opcode,
  decodeInHeader,
  decodeInitIn,
  decodeOpenIn,
  decodeReadIn,
  decodeReleaseIn,
  encodeReply,
  encodeReplyGather,
  requestBody,
  type FuseReply,
  type InHeader,
  type InitIn,
} from './protocol.js';
import { encodeOpenOut } from './protocol-replies.js';
import { answerFromTree, nodeOf } from './tree-answers.js';
import type { FuseTimings } from '../../config/resolve.js';

export interface RawLayerServerOptions {
  tree: LayerTree;
  reader: LayerReader;
  log: Logger;
  /** The read deadline (a read not answered within it fails with EIO; the fetch goes on to fill the cache) and
   *  the kernel's cache timeouts. */
  timings: FuseTimings;
  /** Read-ahead cap the kernel is told in INIT (bytes). */
  maxReadaheadBytes?: number;
}

export interface RawLayerServer {
  /** Answers one request (one whole /dev/fuse read). Resolves with the reply bytes to write, or undefined
   *  for requests that take no reply (FORGET, BATCH_FORGET, INTERRUPT). Never rejects. */
  handle(request: Buffer): Promise<FuseReply | undefined>;
  /** Takeover: a predecessor already answered INIT; `initRequest` is the INIT request the kernel sent then
   *  (undefined if unknown), so the server knows the kernel's minor version and flags without answering. */
  adopt(initRequest: Buffer | undefined): void;
  readonly errors: ErrnoMapper;
  openHandles(): number;
  /** The kernel's INIT request as answered or adopted (its minor and offered flags); undefined before. */
  kernelInit(): InitIn | undefined;
  /** Aborts reads in flight (unmount/stop); those and every later request that takes a reply answer -EIO. */
  close(): void;
}

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;

type Reply = FuseReply | undefined;

/** The first `len` bytes of `parts` (the reader never returns more; kept as a guard on the reply size). */
function capParts(parts: readonly Buffer[], len: number): readonly Buffer[] {
  let n = 0;
  for (const p of parts) n += p.length;
  if (n <= len) return parts;
  const out: Buffer[] = [];
  let left = len;
  for (const p of parts) {
    if (left === 0) break;
    out.push(p.length > left ? p.subarray(0, left) : p);
    left -= Math.min(left, p.length);
  }
  return out;
}

export function createRawLayerServer(o: RawLayerServerOptions): RawLayerServer {
  const { tree, reader, log } = o;
  const { readDeadlineMs, attrTimeoutMs, entryTimeoutMs, negativeTimeoutMs } = o.timings;
  const layer = tree.index.layerDigest;
  const errors = new ErrnoMapper({ log });
  const closing = new AbortController();
  const handles = new Set<number>();
  // 20 random bits above a 32-bit counter (still a safe integer): handles of a successor never collide with
  // those a predecessor left open, which its kernel may still send.
  const fhPrefix = randomInt(1, 1 << 20) * 2 ** 32;
  let fhCounter = 0;
  let kernel: InitIn | undefined;
  const treeOpts = {
    tree,
    timeouts: { entryValidSec: entryTimeoutMs / 1000, attrValidSec: attrTimeoutMs / 1000 },
    negativeTimeoutSec: negativeTimeoutMs / 1000,
  };

  const pathOf = (node: LayerNode): string => `/${node.path}`;
  const ok = (h: InHeader, body?: Buffer): Buffer => encodeReply(h.unique, 0, body);
  const fail = (h: InHeader, errno: number): Buffer => encodeReply(h.unique, errno);

  async function read(h: InHeader, body: Buffer): Promise<FuseReply> {
    const r = decodeReadIn(body);
    if (r === undefined) return fail(h, EINVAL);
    const node = tree.node(h.nodeid);
    if (node === undefined) {
      const e = new NotFoundError(`no node ${h.nodeid} in layer ${layer}`);
      return fail(h, errors.fail(e, 'read', `#${h.nodeid}`));
    }
    if (node.type === 'dir') return fail(h, EISDIR);
    const len = Math.min(r.size, MAX_READ_BYTES);
    if (!handles.has(r.fh)) handles.add(r.fh); // opened by a predecessor: read-ahead registers it lazily
    const work = demandReadParts({
      reader,
      node,
      fh: r.fh,
      offset: r.offset,
      length: len,
      path: pathOf(node),
      readDeadlineMs,
      signal: closing.signal,
    });
    try {
      // Reads in flight answer as soon as close() is called, whether or not the source honours the signal.
      const parts = await raceAbort(work, closing.signal, () => new AbortedError(`layer ${layer} closed`));
      return encodeReplyGather(h.unique, 0, capParts(parts, len));
    } catch (e) {
      if (closing.signal.aborted) return fail(h, EIO);
      return fail(h, errors.fail(e, 'read', pathOf(node)));
    }
  }

  /** Everything but READ answers synchronously. */
  function answer(h: InHeader, body: Buffer): Buffer {
    const fromTree = answerFromTree(treeOpts, h, body);
    if (fromTree !== undefined) return fromTree;
    switch (h.opcode) {
      case Opcode.INIT: {
        const init = decodeInitIn(body);
        if (init === undefined) return fail(h, EINVAL);
        if (init.major < 7) return fail(h, EPROTO);
        kernel = init;
        return ok(h, initReply(init, o.maxReadaheadBytes));
      }
      case Opcode.OPEN: {
        const node = nodeOf(tree, h);
        if (typeof node === 'number') return fail(h, node);
        const open = decodeOpenIn(body);
        if (open === undefined) return fail(h, EINVAL);
        if (node.type === 'dir') return fail(h, EISDIR);
        const f = open.flags;
        if ((f & O_ACCMODE) !== O_RDONLY || (f & (O_CREAT | O_TRUNC | O_APPEND)) !== 0) return fail(h, EROFS);
        if (node.type === 'whiteout') return fail(h, EACCES);
        fhCounter = (fhCounter % 0xffffffff) + 1;
        const fh = fhPrefix + fhCounter;
        handles.add(fh);
        reader.readAhead?.open(fh, node); // read-ahead hook
        return ok(h, encodeOpenOut(fh, FOPEN_KEEP_CACHE)); // layers are immutable: keep the page cache
      }
      case Opcode.RELEASE: {
        const rel = decodeReleaseIn(body);
        if (rel === undefined) return fail(h, EINVAL);
        handles.delete(rel.fh);
        reader.readAhead?.release(rel.fh); // read-ahead hook; unknown handles are a no-op
        return ok(h);
      }
      case Opcode.FLUSH:
        // ENOSYS makes the kernel stop sending FLUSH on every close (no_flush); the close still succeeds.
        return fail(h, ENOSYS);
      case Opcode.RELEASEDIR:
      case Opcode.DESTROY:
        return ok(h);
      default:
        return fail(h, ENOSYS);
    }
  }

  async function handle(request: Buffer): Promise<Reply> {
    const h = decodeInHeader(request);
    if (h === undefined) {
      // Too short for a header: answer EINVAL if at least the unique is there, else there is no one to answer.
      return request.length >= 16 ? encodeReply(request.readBigUInt64LE(8), EINVAL) : undefined;
    }
    const noReply =
      h.opcode === Opcode.FORGET || h.opcode === Opcode.BATCH_FORGET || h.opcode === Opcode.INTERRUPT;
    if (noReply) return undefined;
    if (closing.signal.aborted) return fail(h, EIO);
    const body = requestBody(request, h);
    if (body === undefined) return fail(h, EINVAL);
    try {
      if (h.opcode === Opcode.READ) return await read(h, body);
      return answer(h, body);
    } catch (e) {
      // A bug, not a layer problem; still one reply, so the caller never hangs.
      return fail(h, errors.fail(e, `opcode ${h.opcode}`, `#${h.nodeid}`));
    }
  }

  return {
    handle,
    adopt(initRequest) {
      const h = initRequest === undefined ? undefined : decodeInHeader(initRequest);
      const body = h === undefined || initRequest === undefined ? undefined : requestBody(initRequest, h);
      kernel = body === undefined ? undefined : decodeInitIn(body);
      log.debug({ layer, kernelMinor: kernel?.minor }, 'raw FUSE server adopted a connection');
    },
    errors,
    openHandles: () => handles.size,
    kernelInit: () => kernel,
    close() {
      closing.abort();
      reader.readAhead?.close(); // read-ahead hook
    },
  };
}
