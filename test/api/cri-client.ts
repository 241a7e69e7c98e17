// A grpc-js client for the Kubernetes CRI (runtime.v1 RuntimeService and ImageService, proto/cri-api.proto), as a
// kubelet would talk to containerd's CRI plugin; for tests.
import { credentials, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadProto } from '../../src/api/proto.js';

type Callback = (err: ServiceError | null, res: unknown) => void;
type UnaryMethod = (req: object, opts: { deadline: number }, cb: Callback) => void;
type ServiceCtor = new (addr: string, c: unknown) => Record<string, unknown>;

export interface CriClient {
  /** A RuntimeService call (RunPodSandbox, CreateContainer, ContainerStatus, ...). */
  runtime<T = Record<string, unknown>>(method: string, req: object, timeoutMs?: number): Promise<T>;
  /** An ImageService call (PullImage, ImageStatus, ...). */
  image<T = Record<string, unknown>>(method: string, req: object, timeoutMs?: number): Promise<T>;
  close(): void;
}

export async function criClient(socketPath: string): Promise<CriClient> {
  const pkg = loadPackageDefinition(await loadProto('cri-api.proto')) as unknown as {
    runtime: { v1: { RuntimeService: ServiceCtor; ImageService: ServiceCtor } };
  };
  const address = `unix://${socketPath}`;
  const runtime = new pkg.runtime.v1.RuntimeService(address, credentials.createInsecure());
  const image = new pkg.runtime.v1.ImageService(address, credentials.createInsecure());
  const call =
    (client: Record<string, unknown>) =>
    <T>(method: string, req: object, timeoutMs = 60_000): Promise<T> => {
      const fn = client[method] as UnaryMethod | undefined;
      if (fn === undefined) return Promise.reject(new Error(`CRI has no method ${method}`));
      return new Promise<T>((resolve, reject) =>
        fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) =>
          err ? reject(err) : resolve(res as T),
        ),
      );
    };
  return {
    runtime: call(runtime),
    image: call(image),
    close() {
      for (const c of [runtime, image]) (c as unknown as { close(): void }).close();
    },
  };
}
