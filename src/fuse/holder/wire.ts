// Framing between the FUSE holder and the daemon over a stream socket: [u32 length][u8 kind][payload]; control
// messages are JSON, kernel requests and replies travel as raw bytes behind a u32 mount handle.
import { FormatError } from '../../errors.js';
import type { FuseReply } from '../raw/protocol.js';

/** Bumped on any incompatible change; both sides refuse a peer with another version. */
export const WIRE_VERSION = 1;
/** Largest frame either side accepts (a 1 MiB READ reply plus headers fits many times over). */
export const MAX_FRAME_BYTES = 8 << 20;

const KIND_CONTROL = 1;
const KIND_REQUEST = 2;
const KIND_REPLY = 3;
const HEADER_BYTES = 5;

export interface HelloMount {
  id: string;
  mountpoint: string;
  handle: number;
  meta: Record<string, string>;
  /** The connection's INIT request, base64; null when it never arrived. */
  init: string | null;
}

export type ControlMessage =
  | {
      type: 'hello';
      pid: number;
      version: number;
      mounts: HelloMount[];
      /** The snapshots socket this holder keeps, relayed to target (absent: none; older holders never send it). */
      snapshots?: { socket: string; target: string };
    }
  | {
      type: 'mount';
      id: string;
      mountpoint: string;
      fsname: string;
      subtype: string;
      options: string[];
      meta: Record<string, string>;
    }
  | { type: 'mounted'; id: string; handle: number }
  | { type: 'failed'; id: string; message: string }
  | { type: 'attach'; id: string }
  | { type: 'attached'; id: string; handle: number; replayed: number }
  | { type: 'unmount'; id: string }
  | { type: 'unmounted'; id: string }
  | { type: 'error'; id?: string; message: string };

export type Frame =
  | { kind: 'control'; message: ControlMessage }
  | { kind: 'request'; handle: number; data: Buffer }
  /** A reply keeps the pieces it arrived in: the holder writes them to /dev/fuse with one writev, uncopied. */
  | { kind: 'reply'; handle: number; data: FuseReply };

export function encodeControl(message: ControlMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32LE(1 + body.length, 0);
  out.writeUInt8(KIND_CONTROL, 4);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** The 9 bytes before `dataBytes` of a request (holder → daemon) or reply (daemon → holder). */
export function encodeDataHeader(kind: 'request' | 'reply', handle: number, dataBytes: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + 4);
  out.writeUInt32LE(1 + 4 + dataBytes, 0);
  out.writeUInt8(kind === 'request' ? KIND_REQUEST : KIND_REPLY, 4);
  out.writeUInt32LE(handle, HEADER_BYTES);
  return out;
}

/** One contiguous frame for a request or reply (small ones: one copy is cheaper than a writev). */
export function encodeData(kind: 'request' | 'reply', handle: number, data: Buffer): Buffer {
  return Buffer.concat([encodeDataHeader(kind, handle, data.length), data]);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isU32 = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isStrMap = (v: unknown): v is Record<string, string> => isObj(v) && Object.values(v).every(isStr);
const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

function isHelloMount(v: unknown): v is HelloMount {
  return (
    isObj(v) &&
    isStr(v['id']) &&
    isStr(v['mountpoint']) &&
    isU32(v['handle']) &&
    isStrMap(v['meta']) &&
    (v['init'] === null || isStr(v['init']))
  );
}

/** Checks a parsed JSON value field by field; anything else is a FormatError. */
export function parseControl(v: unknown): ControlMessage {
  const bad = (): never => {
    throw new FormatError(`holder wire: malformed control message ${JSON.stringify(v)?.slice(0, 200)}`);
  };
  if (!isObj(v) || !isStr(v['type'])) return bad();
  const id = v['id'];
  switch (v['type']) {
    case 'hello':
      if (
        isU32(v['pid']) &&
        isU32(v['version']) &&
        Array.isArray(v['mounts']) &&
        v['mounts'].every(isHelloMount)
      ) {
        const hello = { type: 'hello' as const, pid: v['pid'], version: v['version'], mounts: v['mounts'] };
        const s = v['snapshots'];
        if (s === undefined) return hello;
        if (isObj(s) && isStr(s['socket']) && isStr(s['target']))
          return { ...hello, snapshots: { socket: s['socket'], target: s['target'] } };
      }
      return bad();
    case 'mount': {
      const { mountpoint, fsname, subtype, options, meta } = v;
      if (
        isStr(id) &&
        isStr(mountpoint) &&
        isStr(fsname) &&
        isStr(subtype) &&
        isStrArray(options) &&
        isStrMap(meta)
      )
        return { type: 'mount', id, mountpoint, fsname, subtype, options, meta };
      return bad();
    }
    case 'mounted':
      return isStr(id) && isU32(v['handle']) ? { type: 'mounted', id, handle: v['handle'] } : bad();
    case 'failed':
      return isStr(id) && isStr(v['message']) ? { type: 'failed', id, message: v['message'] } : bad();
    case 'attach':
      return isStr(id) ? { type: 'attach', id } : bad();
    case 'attached':
      return isStr(id) && isU32(v['handle']) && isU32(v['replayed'])
        ? { type: 'attached', id, handle: v['handle'], replayed: v['replayed'] }
        : bad();
    case 'unmount':
      return isStr(id) ? { type: 'unmount', id } : bad();
    case 'unmounted':
      return isStr(id) ? { type: 'unmounted', id } : bad();
    case 'error':
      if (!isStr(v['message']) || (id !== undefined && !isStr(id))) return bad();
      return id === undefined
        ? { type: 'error', message: v['message'] }
        : { type: 'error', id, message: v['message'] };
    default:
      return bad();
  }
}

/**
 * Splits a byte stream into frames. Chunks are kept as a list: a reply frame is handed on as the slices it
 * arrived in (no copy), other frames are joined once. A malformed frame throws FormatError; the stream is then
 * unusable (the caller closes the connection).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw new FormatError('holder wire: stream already failed');
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.buffered < 4) break;
        const length = this.peekLength();
        if (length < 1 || length > MAX_FRAME_BYTES)
          throw new FormatError(`holder wire: frame length ${length} outside 1..${MAX_FRAME_BYTES}`);
        if (this.buffered < 4 + length) break;
        frames.push(decodeFrame(this.take(4 + length), 4 + length));
      }
    } catch (e) {
      this.failed = true;
      this.chunks = [];
      throw e;
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32LE(0);
    return Buffer.concat(this.chunks, 4).readUInt32LE(0);
  }

  /** The next `n` bytes as the slices of the chunks they lie in (nothing copied). */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const first = this.chunks[0]!;
      if (first.length <= left) {
        out.push(first);
        this.chunks.shift();
        left -= first.length;
      } else {
        out.push(first.subarray(0, left));
        this.chunks[0] = first.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** `parts` minus its first `skip` bytes, as slices. */
function dropPrefix(parts: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const p of parts) {
    if (left >= p.length) {
      left -= p.length;
      continue;
    }
    out.push(left > 0 ? p.subarray(left) : p);
    left = 0;
  }
  return out;
}

/** A frame from its pieces (length prefix included). */
function decodeFrame(parts: readonly Buffer[], n: number): Frame {
  const kind = n > 4 ? (parts[0]!.length > 4 ? parts[0]![4] : Buffer.concat(parts, 5)[4]) : undefined;
  if (kind === KIND_REPLY && parts.length > 1) {
    if (n < 9) throw new FormatError(`holder wire: data frame of ${n - 4} bytes has no handle`);
    const handle = Buffer.concat(parts, 9).readUInt32LE(5);
    const pieces = dropPrefix(parts, 9);
    return { kind: 'reply', handle, data: pieces.length === 1 ? pieces[0]! : pieces };
  }
  const body = (parts.length === 1 ? parts[0]! : Buffer.concat(parts, n)).subarray(4);
  if (kind === KIND_CONTROL) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8', 1));
    } catch (e) {
      throw new FormatError(`holder wire: control frame is not JSON: ${String(e)}`, { cause: e });
    }
    return { kind: 'control', message: parseControl(parsed) };
  }
  if (kind === KIND_REQUEST || kind === KIND_REPLY) {
    if (body.length < 5)
      throw new FormatError(`holder wire: data frame of ${body.length} bytes has no handle`);
    return {
      kind: kind === KIND_REQUEST ? 'request' : 'reply',
      handle: body.readUInt32LE(1),
      data: body.subarray(5),
    };
  }
  throw new FormatError(`holder wire: unknown frame kind ${String(kind)}`);
}
