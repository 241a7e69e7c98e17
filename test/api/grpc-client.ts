// A grpc-js client for the snapshots service (what containerd's proxy client sends), for tests.
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSnapshotsProto } from '../../src/api/proto.js';

type Callback = (err: ServiceError | null, res: unknown) => void;
type UnaryMethod = (req: object, md: Metadata, cb: Callback) => void;

export interface SnapshotsClient {
  call<T = Record<string, unknown>>(method: string, req: object, namespace?: string): Promise<T>;
  list(filters: string[], namespace?: string): Promise<Array<Array<Record<string, unknown>>>>;
  close(): void;
}

export async function snapshotsClient(socketPath: string): Promise<SnapshotsClient> {
  const def = await loadSnapshotsProto();
  const pkg = loadPackageDefinition(def) as unknown as {
    containerd: {
      services: {
        snapshots: { v1: { Snapshots: new (addr: string, c: unknown) => Record<string, unknown> } };
      };
    };
  };
  const Ctor = pkg.containerd.services.snapshots.v1.Snapshots;
  const client = new Ctor(`unix://${socketPath}`, credentials.createInsecure());
  const md = (ns: string) => {
    const m = new Metadata();
    m.set('containerd-namespace', ns);
    return m;
  };
  return {
    call<T>(method: string, req: object, namespace = 'default'): Promise<T> {
      const fn = client[method] as UnaryMethod;
      return new Promise<T>((resolve, reject) =>
        fn.call(client, { snapshotter: 'ferry', ...req }, md(namespace), (err, res) =>
          err ? reject(err) : resolve(res as T),
        ),
      );
    },
    list(filters: string[], namespace = 'default') {
      const fn = client['List'] as (req: object, md: Metadata) => NodeJS.ReadableStream;
      const stream = fn.call(client, { snapshotter: 'ferry', filters }, md(namespace));
      const batches: Array<Array<Record<string, unknown>>> = [];
      return new Promise((resolve, reject) => {
        stream.on('data', (m: { info: Array<Record<string, unknown>> }) => batches.push(m.info));
        stream.on('end', () => resolve(batches));
        stream.on('error', reject);
      });
    },
    close() {
      (client as unknown as { close(): void }).close();
    },
  };
}
