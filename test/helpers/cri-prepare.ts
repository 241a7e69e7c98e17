// Prepares an image's layers over the snapshots API with the CRI label set, as containerd's unpacker does
// when CRI pulls with disable_snapshot_annotations = false.
import { sha256, type Digest } from '../../src/image/digest.js';
import type { SnapshotsClient } from '../api/grpc-client.js';

export const CRI_LABEL = 'containerd.io/snapshot/cri.';

export interface CriPrepareResult {
  /** The chain id of each layer (the committed snapshot's name), bottom first. */
  chainIds: Digest[];
  /** Each Prepare's outcome: 'ok', or the gRPC status code it failed with (ALREADY_EXISTS = mounted lazily). */
  codes: Array<'ok' | number>;
}

export async function prepareWithCriLabels(
  c: SnapshotsClient,
  image: { ref: string; manifestDigest: Digest; layerDigests: readonly Digest[]; diffIds: readonly Digest[] },
  /** Awaited before each layer's Prepare (a test that watches the daemon between layers). */
  beforeLayer?: (i: number) => Promise<void>,
): Promise<CriPrepareResult> {
  const chainIds: Digest[] = [];
  const codes: Array<'ok' | number> = [];
  for (const [i, diff] of image.diffIds.entries()) {
    await beforeLayer?.(i);
    const parent = chainIds[i - 1];
    const target = parent === undefined ? diff : sha256(`${parent} ${diff}`);
    const labels = {
      'containerd.io/snapshot.ref': target,
      [`${CRI_LABEL}image-ref`]: image.ref,
      [`${CRI_LABEL}manifest-digest`]: image.manifestDigest,
      [`${CRI_LABEL}layer-digest`]: image.layerDigests[i]!,
      [`${CRI_LABEL}image-layers`]: image.layerDigests.slice(i).join(','),
    };
    codes.push(
      await c.call('Prepare', { key: `k8s.io/${i}/extract ${target}`, parent: parent ?? '', labels }).then(
        () => 'ok' as const,
        (e: unknown) => (e as { code: number }).code,
      ),
    );
    chainIds.push(target);
  }
  return { chainIds, codes };
}
