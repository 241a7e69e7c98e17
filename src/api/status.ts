// FerryError codes → gRPC status codes, chosen so containerd's errdefs maps them to its own error classes.
import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { isFerryError, type ErrorCode } from '../errors.js';

const CODES: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAVAILABLE: status.UNAVAILABLE,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  ABORTED: status.CANCELLED,
  INTEGRITY: status.DATA_LOSS,
  FORMAT: status.INTERNAL,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
};

export function grpcCode(e: unknown): status {
  return isFerryError(e) ? CODES[e.code] : status.UNKNOWN;
}

/** The error object grpc-js sends as a status; the message is the error's text. */
export function toServiceError(e: unknown): Partial<ServiceError> {
  return {
    code: grpcCode(e),
    details: e instanceof Error ? e.message : String(e),
    metadata: new Metadata(),
  };
}
