// Property tests for the snapshots gRPC handlers through a real in-process server on a unix socket: random
// sequences of calls over a small key pool (random parents, labels incl. remote-layer ones, filters, field
// masks) and raw random protobuf bytes. Every call ends in a gRPC status; the server keeps serving.
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { SnapshotsServer } from '../../src/api/snapshots-server.js';
import { MetadataStore } from '../../src/snapshot/metadata-store.js';
import type { RemoteFileSystem } from '../../src/snapshot/remote-fs.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { snapshotsClient, type SnapshotsClient } from '../api/grpc-client.js';
import { countCase, reportCounts } from './guard.js';

let mountCalls = 0;
const remote: RemoteFileSystem = {
  async mount() {
    mountCalls++;
    if (mountCalls % 3 === 0) throw new UnavailableError('fuzz: registry down');
    return Promise.resolve({ sizeBytes: 2 ** 40, inodes: 7 });
  },
  check: async () => Promise.resolve(),
  unmount: async () => Promise.resolve(),
};

let root: string;
let server: SnapshotsServer;
let store: MetadataStore;
let c: SnapshotsClient;
let raw: Client;
const codes = new Map<string, number>();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ferry-fuzz-grpc-'));
  store = new MetadataStore({ path: join(root, 'metadata.db') });
  const snapshotter = new Snapshotter({ root, store, log: silentLogger(), remote, remoteTimeoutMs: 2000 });
  server = new SnapshotsServer({ socketPath: join(root, 'sn.sock'), snapshotter, log: silentLogger() });
  await server.start();
  c = await snapshotsClient(join(root, 'sn.sock'));
  raw = new Client(`unix://${join(root, 'sn.sock')}`, credentials.createInsecure());
});

afterAll(async () => {
  reportCounts('snapshots-grpc');
  console.log(`grpc status codes: ${JSON.stringify(Object.fromEntries(codes))}`);
  c?.close();
  raw?.close();
  await server?.stop(1000);
  store?.close();
});

const key = fc.oneof(
  fc.constantFrom(
    '',
    'a',
    'b',
    'default/1/a',
    'default/2/sha256:b',
    'sha256:t1',
    'sha256:t2',
    '../x',
    'a/../../etc',
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ minLength: 300, maxLength: 5000 }),
);
const labelKey = fc.oneof(
  fc.constantFrom(
    'containerd.io/snapshot.ref',
    'containerd.io/snapshot/cri.image-ref',
    'containerd.io/snapshot/cri.layer-digest',
    'containerd.io/snapshot/cri.manifest-digest',
    'containerd.io/snapshot/cri.image-layers',
    'containerd.io/snapshot/remote/stargz.reference',
    'containerd.io/snapshot/remote',
    'x',
  ),
  fc.string({ maxLength: 20 }),
);
const labelValue = fc.oneof(
  fc.constantFrom(
    'sha256:t1',
    'sha256:t2',
    `sha256:${'a'.repeat(64)}`,
    '127.0.0.1:1/app:1',
    'registry/x@sha256:00',
    '',
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 4000, maxLength: 5000 }),
);
const labels = fc.dictionary(labelKey, labelValue, { maxKeys: 5 });
const filter = fc.oneof(
  fc.constantFrom(
    'kind==active',
    'kind==committed',
    'parent==""',
    'name~=a',
    'labels."x"==1',
    'labels.x',
    'kind=',
    '(',
    '"',
    ',',
    'name==a,kind!=view',
  ),
  fc.string({ maxLength: 40 }),
);
const paths = fc.array(
  fc.oneof(
    fc.constantFrom('labels', 'labels.x', 'labels."a b"', 'name', 'kind', ''),
    fc.string({ maxLength: 15 }),
  ),
  { maxLength: 3 },
);

const call = fc.oneof(
  fc.record({ m: fc.constantFrom('Prepare', 'View'), req: fc.record({ key, parent: key, labels }) }),
  fc.record({ m: fc.constant('Commit'), req: fc.record({ key, name: key, labels }) }),
  fc.record({ m: fc.constantFrom('Mounts', 'Remove', 'Stat', 'Usage'), req: fc.record({ key }) }),
  fc.record({
    m: fc.constant('Update'),
    req: fc.record({
      info: fc.option(fc.record({ name: key, labels }), { nil: undefined }),
      update_mask: fc.record({ paths }),
    }),
  }),
  fc.record({ m: fc.constant('Cleanup'), req: fc.constant({}) }),
  fc.record({ m: fc.constant('List'), req: fc.record({ filters: fc.array(filter, { maxLength: 3 }) }) }),
);

function codeOf(e: unknown): number {
  return e === undefined ? status.OK : (e as ServiceError).code;
}

async function send(m: string, req: Record<string, unknown>): Promise<number> {
  countCase('grpc-call');
  const ns = 'fuzz';
  const p = m === 'List' ? c.list((req['filters'] as string[]) ?? [], ns) : c.call(m, req, ns);
  return p.then(
    () => status.OK,
    (e: unknown) => codeOf(e),
  );
}

const KNOWN = new Set<number>([
  status.OK,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.FAILED_PRECONDITION,
  status.INVALID_ARGUMENT,
  status.UNAVAILABLE,
  status.RESOURCE_EXHAUSTED,
]);

describe('fuzz: snapshots gRPC handlers', () => {
  it('random call sequences end in known statuses, and the server keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 12 }), async (calls) => {
        for (const { m, req } of calls) {
          const code = await send(m, req);
          codes.set(status[code] ?? String(code), (codes.get(status[code] ?? String(code)) ?? 0) + 1);
          expect(KNOWN.has(code), `${m} ${JSON.stringify(req).slice(0, 300)} → ${status[code]}`).toBe(true);
        }
        expect(await send('Stat', { key: 'never-there' })).toBe(status.NOT_FOUND);
      }),
      { numRuns: 250 },
    );
  });

  it('raw random bytes as request messages get a status, never a crash', async () => {
    const methods = ['Prepare', 'View', 'Mounts', 'Commit', 'Remove', 'Stat', 'Update', 'Usage', 'Cleanup'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.uint8Array({ maxLength: 300 }), async (m, bytes) => {
        countCase('grpc-raw');
        const md = new Metadata();
        md.set('containerd-namespace', 'fuzz');
        const code = await new Promise<number>((resolve) =>
          raw.makeUnaryRequest(
            `/containerd.services.snapshots.v1.Snapshots/${m}`,
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from(bytes),
            md,
            { deadline: Date.now() + 5000 },
            (err) => resolve(codeOf(err ?? undefined)),
          ),
        );
        codes.set(`raw:${status[code]}`, (codes.get(`raw:${status[code]}`) ?? 0) + 1);
        expect(code).not.toBe(status.DEADLINE_EXCEEDED);
        expect(code).not.toBe(status.UNKNOWN);
      }),
      { numRuns: 500 },
    );
    expect(await send('Stat', { key: 'never-there' })).toBe(status.NOT_FOUND);
  });
});
