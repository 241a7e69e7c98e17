// Fakes for source middleware tests: a controllable ChunkSource that records calls and resolves on demand.
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';
import { AbortedError } from '../../src/errors.js';

export interface PendingCall {
  req: ChunkRequest;
  signal: AbortSignal | undefined;
  resolve(b: Buffer): void;
  reject(e: Error): void;
}

export class ManualSource implements ChunkSource {
  readonly calls: PendingCall[] = [];
  readonly promoted: ChunkRequest[] = [];

  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.calls.push({ req, signal, resolve, reject });
      signal?.addEventListener('abort', () => reject(new AbortedError('manual source aborted')), {
        once: true,
      });
    });
  }

  promote(req: ChunkRequest): void {
    this.promoted.push(req);
  }
}

/** Lets queued microtasks and promise chains run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
