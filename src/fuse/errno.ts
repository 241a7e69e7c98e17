// FerryError codes → negative errno for FUSE replies, and the one place a failed FS op is logged (once per
// distinct failure within a window, so kernel readahead retries do not flood the log).
import { toFerryError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';

export const ENOENT = -2;
export const EINTR = -4;
export const EIO = -5;
export const EACCES = -13;
export const EEXIST = -17;
export const ENOTDIR = -20;
export const EISDIR = -21;
export const EINVAL = -22;
export const EROFS = -30;
export const ERANGE = -34;
export const ENOSYS = -38;
export const ENODATA = -61;
export const EPROTO = -71;
export const ENOTSUP = -95;

const BY_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: EINVAL,
  NOT_FOUND: ENOENT,
  ALREADY_EXISTS: EEXIST,
  FAILED_PRECONDITION: EIO,
  UNAUTHENTICATED: EIO,
  PERMISSION_DENIED: EACCES,
  UNAVAILABLE: EIO,
  DEADLINE_EXCEEDED: EIO,
  ABORTED: EINTR,
  INTEGRITY: EIO,
  FORMAT: EIO,
  RESOURCE_EXHAUSTED: EIO,
  UNIMPLEMENTED: ENOTSUP,
  INTERNAL: EIO,
};

export function errnoFor(code: ErrorCode): number {
  return BY_CODE[code];
}

export interface ErrnoMapperOptions {
  log: Logger;
  /** Identical failures within this window are counted, not logged again. */
  repeatWindowMs?: number;
}

export class ErrnoMapper {
  private readonly log: Logger;
  private readonly windowMs: number;
  private readonly recent = new Map<string, { at: number; suppressed: number }>();
  failures = 0;

  constructor(options: ErrnoMapperOptions) {
    this.log = options.log;
    this.windowMs = options.repeatWindowMs ?? 10_000;
  }

  /** Maps any thrown value to a negative errno, logging it (with the op and path) unless just logged. */
  fail(e: unknown, op: string, path: string): number {
    this.failures++;
    const err = toFerryError(e);
    const errno = errnoFor(err.code);
    // One line per incident: the message varies with the byte range and with which deadline fired first.
    const key = `${op}\0${path}\0${err.code}`;
    const now = Date.now();
    const seen = this.recent.get(key);
    if (seen !== undefined && now - seen.at < this.windowMs) {
      seen.suppressed++;
      return errno;
    }
    if (this.recent.size > 1000) this.recent.clear();
    this.recent.set(key, { at: now, suppressed: 0 });
    this.log.warn(
      { op, path, code: err.code, errno, err, repeats: seen?.suppressed ?? 0 },
      `fuse ${op} ${path} failed: ${err.message}`,
    );
    return errno;
  }
}
