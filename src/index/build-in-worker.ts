// Runs an index build on a worker thread of its own: inflating, parsing and hashing a layer cost ~1.5 s of CPU
// per 80 MB of tar, which on the main thread would stall FUSE and keep every layer's build on one core. This
// thread only moves the blob's bytes in (at most IN_FLIGHT_BYTES ahead of the build) and built chunks out.
import { Worker } from 'node:worker_threads';
import { AbortedError, toFerryError, UnavailableError, type FerryError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { errorFrom, ownedView } from '../codec/worker-protocol.js';
import { workerEntry } from '../codec/worker-entry.js';
import type { BuildWorkerData, FromBuildWorker, ToBuildWorker } from './build-worker-protocol.js';
import { deserializeIndex } from './serialize.js';

/** Blob bytes handed to the worker and not yet consumed: bounds the memory a slow build can pin. */
const IN_FLIGHT_BYTES = 8 * 1024 * 1024;

export interface BuildInWorkerOptions {
  layerDigest: Digest;
  mediaType: string;
  blob: BlobReader;
  size: number;
  chunkSizeBytes: number;
  spanBytes: number;
  diffId: Digest;
  signal?: AbortSignal | undefined;
  onProgress?: ((compressedBytes: number) => void) | undefined;
  onChunk?: ((digest: Digest, bytes: Buffer) => void) | undefined;
}

/** The layer's index, built and verified (digest and diffID) on a worker thread. */
export async function buildIndexInWorker(o: BuildInWorkerOptions): Promise<LayerIndex> {
  o.signal?.throwIfAborted();
  const entry = workerEntry('../index/build-worker.js');
  const data: BuildWorkerData = {
    layerDigest: o.layerDigest,
    mediaType: o.mediaType,
    size: o.size,
    chunkSizeBytes: o.chunkSizeBytes,
    spanBytes: o.spanBytes,
    diffId: o.diffId,
    wantChunks: o.onChunk !== undefined,
  };
  const worker = new Worker(entry.script, { eval: entry.eval, workerData: data });
  const stream = await o.blob.stream(o.signal);
  let sent = 0;
  let consumed = 0;
  let drained: (() => void) | undefined;
  let failed: FerryError | undefined;
  let finish!: (r: { index: LayerIndex } | { error: FerryError }) => void;
  const done = new Promise<{ index: LayerIndex } | { error: FerryError }>((r) => (finish = r));
  const fail = (e: FerryError): void => {
    failed ??= e;
    drained?.();
    finish({ error: failed });
  };
  worker.on('message', (m: FromBuildWorker) => {
    switch (m.t) {
      case 'progress':
        consumed = m.bytes;
        o.onProgress?.(m.bytes);
        if (sent - consumed < IN_FLIGHT_BYTES / 2) drained?.();
        return;
      case 'chunk':
        o.onChunk?.(m.digest, Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
        return;
      case 'done':
        try {
          finish({ index: deserializeIndex(m.serialized, o.layerDigest) });
        } catch (e) {
          fail(toFerryError(e));
        }
        return;
      case 'error':
        fail(errorFrom(m.code, m.message));
    }
  });
  worker.on('error', (e: Error) => fail(new UnavailableError(`index build worker failed: ${e.message}`)));
  worker.on('exit', (code) => fail(new UnavailableError(`index build worker exited (${code})`)));
  const onAbort = (): void => fail(new AbortedError('index build aborted', { cause: o.signal?.reason }));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const post = (m: ToBuildWorker, transfer: ArrayBuffer[] = []): void => worker.postMessage(m, transfer);
    try {
      for await (const chunk of stream) {
        if (failed !== undefined) break;
        const { view, buffer } = ownedView(chunk);
        post({ t: 'data', bytes: view }, [buffer]);
        sent += view.byteLength;
        while (failed === undefined && sent - consumed > IN_FLIGHT_BYTES)
          await new Promise<void>((r) => (drained = r));
      }
      if (failed === undefined) post({ t: 'end' });
    } catch (e) {
      // The blob's stream failed (the registry, the link): the build cannot finish.
      fail(toFerryError(e, 'UNAVAILABLE'));
    }
    const r = await done;
    if ('error' in r) throw r.error;
    return r.index;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    void worker.terminate();
  }
}
