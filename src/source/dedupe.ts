// DedupeSource: singleflight per chunk digest. Callers share one fetch; a caller's abort only detaches that
// caller, and the shared fetch is aborted only when no caller is left waiting.
import type { Digest } from '../image/digest.js';
import { AbortedError } from '../errors.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';

interface Flight {
  readonly promise: Promise<Buffer>;
  readonly controller: AbortController;
  waiters: number;
  priority: ChunkRequest['priority'];
}

export interface DedupeSourceOptions {
  next: ChunkSource;
}

export class DedupeSource implements ChunkSource {
  private readonly next: ChunkSource;
  private readonly flights = new Map<Digest, Flight>();
  /** Underlying fetches started (for tests and metrics). */
  started = 0;
  /** Callers that joined an existing fetch. */
  joined = 0;

  constructor(options: DedupeSourceOptions) {
    this.next = options.next;
  }

  get inFlight(): number {
    return this.flights.size;
  }

  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.reject(new AbortedError(`${describeChunk(req)}: aborted`));
    const digest = chunkOf(req).digest;
    let flight = this.flights.get(digest);
    if (flight === undefined) {
      const controller = new AbortController();
      const promise = this.next.fetch(req, controller.signal).finally(() => {
        if (this.flights.get(digest) === flight) this.flights.delete(digest);
      });
      promise.catch(() => undefined); // observed by waiters; never an unhandled rejection
      flight = { promise, controller, waiters: 0, priority: req.priority };
      this.flights.set(digest, flight);
      this.started++;
    } else {
      this.joined++;
      if (req.priority === 'demand' && flight.priority === 'prefetch') {
        flight.priority = 'demand';
        this.next.promote?.(req);
      }
    }
    return this.wait(flight, req, signal);
  }

  promote(req: ChunkRequest): void {
    const flight = this.flights.get(chunkOf(req).digest);
    if (flight !== undefined) flight.priority = 'demand';
    this.next.promote?.(req);
  }

  private wait(flight: Flight, req: ChunkRequest, signal: AbortSignal | undefined): Promise<Buffer> {
    const digest = chunkOf(req).digest;
    flight.waiters++;
    if (signal === undefined) return flight.promise;
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        flight.waiters--;
        if (flight.waiters === 0) {
          // Nobody wants it any more: cancel, and let the next caller start afresh instead of joining it.
          if (this.flights.get(digest) === flight) this.flights.delete(digest);
          flight.controller.abort();
        }
        reject(new AbortedError(`${describeChunk(req)}: aborted`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (b) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(b);
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}
