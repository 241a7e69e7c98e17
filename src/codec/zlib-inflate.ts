// The fast path of chunk decoding: Node's native zlib (several times faster than pako) from a gzip member start
// or any zran checkpoint (bit offsets via bit-align.ts); pako stays the reference and the fallback.
import { constants, gunzipSync, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { byteAlignedSpan } from './bit-align.js';
import type { InflateStart } from './chunk-job.js';

/** Output allowed past `need` before giving up on zlib (it cannot stop early; pako can). */
const MAX_EXTRA_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Output buffer slack so the usual span (need plus a few KiB from the end margin) fits one allocation. */
const OUTPUT_SLACK_BYTES = 64 * 1024;
const GZIP_TRAILER_BYTES = 8;

/**
 * Inflates `input` from `start` with Node's zlib and returns the whole output when it holds at least `need`
 * bytes, else undefined (truncated or corrupt data, too much output): the caller then decodes with pako,
 * which reports the error. Like pako, it crosses from a raw stream's end into the next gzip member.
 */
export function inflateWithZlib(span: Uint8Array, start: InflateStart, need: number): Buffer | undefined {
  const opts: ZlibOptions = {
    // A span ends a little past the chunk, inside a deflate stream: take what is there, not an EOF error.
    finishFlush: constants.Z_SYNC_FLUSH,
    chunkSize: need + OUTPUT_SLACK_BYTES,
    maxOutputLength: need + MAX_EXTRA_OUTPUT_BYTES,
  };
  try {
    if (start.gzip) return enough(gunzipSync(span, opts), need);
    const input = start.bits === 0 ? span : byteAlignedSpan(span, start.bits);
    const raw = inflateRawSync(input, {
      ...opts,
      ...(start.window !== undefined && start.window.length > 0 ? { dictionary: start.window } : {}),
      info: true,
    }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    const head = raw.buffer;
    if (head.length >= need) return head;
    // The raw stream ended inside the span: skip its trailer and go on with the next member, as pako does.
    const next = raw.engine.bytesWritten + GZIP_TRAILER_BYTES;
    if (next + 1 >= input.length || input[next] !== 0x1f || input[next + 1] !== 0x8b) return undefined;
    const rest = need - head.length;
    const tail = gunzipSync(input.subarray(next), {
      ...opts,
      chunkSize: rest + OUTPUT_SLACK_BYTES,
      maxOutputLength: rest + MAX_EXTRA_OUTPUT_BYTES,
    });
    return enough(Buffer.concat([head, tail]), need);
  } catch {
    // Corrupt data, bad window, a trailer followed by garbage: pako decides, with its precise error.
    return undefined;
  }
}

function enough(out: Buffer, need: number): Buffer | undefined {
  return out.length >= need ? out : undefined;
}
