// Messages between the decode pool and its worker threads: shapes, the buffer-ownership rule for transfers,
// and how a failure's code becomes its FerryError subclass again.
import { FerryError, FormatError, IntegrityError, InvalidArgumentError, type ErrorCode } from '../errors.js';
import type { ChunkJob } from './chunk-job.js';

export interface DecodeRequest {
  readonly id: number;
  /** The job with its window copied into a buffer of its own (transferred). */
  readonly job: ChunkJob;
  readonly compressed: Uint8Array;
}

export type DecodeReply =
  | { readonly id: number; readonly ok: true; readonly bytes: Uint8Array }
  | { readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * `view` itself if it spans the whole of a plain ArrayBuffer (so transferring that buffer detaches nothing
 * anyone else sees — never a slice of Node's shared Buffer pool or of a larger blob), else a copy that does.
 */
export function ownedView(view: Uint8Array): { view: Uint8Array; buffer: ArrayBuffer } {
  const buf = view.buffer;
  if (buf instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === buf.byteLength) {
    return { view, buffer: buf };
  }
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return { view: copy, buffer: copy.buffer };
}

/**
 * A decoded chunk is usually a view at the start of zlib's output buffer, which has slack past it (a span ends a
 * little beyond its chunk): sending that whole buffer costs less than copying the view, as long as the slack is a
 * small share of what stays allocated. Anything smaller than Node's Buffer pool may be a slice of it: copied.
 */
const MIN_SHARE_OF_BUFFER = 0.875;

/**
 * `view` itself with its ArrayBuffer to transfer when the view fills most of that buffer (see MIN_SHARE_OF_BUFFER),
 * else as ownedView: the decode worker's reply, whose buffer nobody in the worker uses afterwards.
 */
export function replyView(view: Uint8Array): { view: Uint8Array; buffer: ArrayBuffer } {
  const buf = view.buffer;
  if (
    buf instanceof ArrayBuffer &&
    buf.byteLength > Buffer.poolSize &&
    view.byteLength >= buf.byteLength * MIN_SHARE_OF_BUFFER
  ) {
    return { view, buffer: buf };
  }
  return ownedView(view);
}

/** Rebuilds a worker's failure as the FerryError subclass its code belongs to. */
export function errorFrom(code: ErrorCode, message: string): FerryError {
  switch (code) {
    case 'FORMAT':
      return new FormatError(message);
    case 'INTEGRITY':
      return new IntegrityError(message);
    case 'INVALID_ARGUMENT':
      return new InvalidArgumentError(message);
    default:
      return new FerryError(code, message);
  }
}
