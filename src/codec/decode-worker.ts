// Worker-thread entry of the decode pool: decodes and verifies one chunk job per message and transfers the
// verified bytes back; failures travel as their FerryError code and message.
import { parentPort } from 'node:worker_threads';
import { FerryError } from '../errors.js';
import { decodeAndVerify } from './chunk-job.js';
import { replyView, type DecodeReply, type DecodeRequest } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('decode-worker.ts must run in a worker thread');

port.on('message', (req: DecodeRequest) => {
  let reply: DecodeReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const { view, buffer } = replyView(decodeAndVerify(req.job, req.compressed));
    reply = { id: req.id, ok: true, bytes: view };
    transfer = [buffer];
  } catch (e) {
    reply =
      e instanceof FerryError
        ? { id: req.id, ok: false, code: e.code, message: e.message }
        : { id: req.id, ok: false, code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
