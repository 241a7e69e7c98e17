// Ferry's typed errors: every failure carries a stable code; api/ maps codes to gRPC status, fuse/ to errno.

export type ErrorCode =
  | 'INVALID_ARGUMENT' // caller's input is malformed (bad reference, bad request)
  | 'NOT_FOUND' // the thing asked for does not exist (manifest, blob, path)
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'UNAUTHENTICATED' // registry refused our credentials
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE' // transient: network, 5xx, registry down; retrying may help
  | 'DEADLINE_EXCEEDED'
  | 'ABORTED' // cancelled by an AbortSignal
  | 'INTEGRITY' // bytes did not match their digest
  | 'FORMAT' // corrupt or unsupported data: tar, gzip, TOC, manifest, index
  | 'RESOURCE_EXHAUSTED' // size limits, disk full
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

export class FerryError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FerryError';
  }
}

export class InvalidArgumentError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

export class NotFoundError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

export class UnavailableError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class IntegrityError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTEGRITY', message, options);
  }
}

export class FormatError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FORMAT', message, options);
  }
}

export class DeadlineError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

export class AbortedError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ABORTED', message, options);
  }
}

export class ResourceExhaustedError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

export function isFerryError(e: unknown, code?: ErrorCode): e is FerryError {
  return e instanceof FerryError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a FerryError, keeping FerryErrors as they are. */
export function toFerryError(e: unknown, fallback: ErrorCode = 'INTERNAL'): FerryError {
  if (e instanceof FerryError) return e;
  if (e instanceof Error && e.name === 'AbortError') return new AbortedError(e.message, { cause: e });
  return new FerryError(fallback, e instanceof Error ? e.message : String(e), { cause: e });
}
