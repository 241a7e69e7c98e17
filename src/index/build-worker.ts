// Worker-thread entry of an index build: the main thread streams the layer blob in (flow-controlled by the
// progress this thread reports), this thread inflates, parses, hashes and verifies it, sends each built chunk
// back for the cache, and at the end the serialized index, or the failure as its FerryError code and message.
import { parentPort, workerData } from 'node:worker_threads';
import { FerryError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { BlobReader } from '../image/blob-reader.js';
import { ownedView } from '../codec/worker-protocol.js';
import { buildIndexFromStream } from './build-stream.js';
import { serializeIndex } from './serialize.js';
import type { BuildWorkerData, FromBuildWorker, ToBuildWorker } from './build-worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('build-worker.ts must run in a worker thread');
const data = workerData as BuildWorkerData;
const send = (m: FromBuildWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

/** The blob's bytes as the main thread sends them. */
const pending: Buffer[] = [];
let ended = false;
let wake: (() => void) | undefined;
port.on('message', (m: ToBuildWorker) => {
  if (m.t === 'data') pending.push(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
  else ended = true;
  wake?.();
});

async function* incoming(): AsyncGenerator<Buffer> {
  for (;;) {
    const next = pending.shift();
    if (next !== undefined) yield next;
    else if (ended) return;
    else await new Promise<void>((r) => (wake = r));
  }
}

const notRandomAccess = (): never => {
  throw new FerryError('INTERNAL', 'an index build reads its blob as one stream');
};
const blob: BlobReader = {
  digest: data.layerDigest,
  size: () => Promise.resolve(data.size),
  readRange: notRandomAccess,
  stream: () => Promise.resolve(incoming()),
};

try {
  const index = await buildIndexFromStream({
    layerDigest: data.layerDigest,
    mediaType: data.mediaType,
    blob,
    chunkSizeBytes: data.chunkSizeBytes,
    spanBytes: data.spanBytes,
    diffId: data.diffId,
    onProgress: (bytes) => send({ t: 'progress', bytes }),
    ...(data.wantChunks
      ? {
          onChunk: (_i: number, bytes: Buffer, digest: Digest) => {
            const { view, buffer } = ownedView(bytes);
            send({ t: 'chunk', digest, bytes: view }, [buffer]);
          },
        }
      : {}),
  });
  const { view, buffer } = ownedView(serializeIndex(index));
  send({ t: 'done', serialized: view }, [buffer]);
} catch (e) {
  send(
    e instanceof FerryError
      ? { t: 'error', code: e.code, message: e.message }
      : { t: 'error', code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) },
  );
}
