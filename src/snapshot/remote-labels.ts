// Which layer a Prepare asks to mount lazily, read from the labels containerd passes with it: CRI's
// `cri.*` keys (AppendInfoHandlerWrapper) or ctr-remote's `remote/stargz.*` keys.
import { isDigest, type Digest } from '../image/digest.js';
import { LABEL_TARGET_REF } from './types.js';

export const CRI_IMAGE_REF = 'containerd.io/snapshot/cri.image-ref';
export const CRI_LAYER_DIGEST = 'containerd.io/snapshot/cri.layer-digest';
export const CRI_MANIFEST_DIGEST = 'containerd.io/snapshot/cri.manifest-digest';
export const CRI_IMAGE_LAYERS = 'containerd.io/snapshot/cri.image-layers';
export const STARGZ_REFERENCE = 'containerd.io/snapshot/remote/stargz.reference';
export const STARGZ_DIGEST = 'containerd.io/snapshot/remote/stargz.digest';
export const STARGZ_LAYERS = 'containerd.io/snapshot/remote/stargz.layers';

/** Everything needed to find and mount one layer; all of it comes from (and is restorable from) labels. */
export interface RemoteLayerRef {
  /** The chain ID the unpacker wants committed. */
  readonly target: string;
  /** Image reference as the client gave it, e.g. `127.0.0.1:5000/app:1`. */
  readonly imageRef: string;
  readonly layerDigest: Digest;
  /** Platform manifest digest, when the client sent it (CRI does, ctr-remote does not). */
  readonly manifestDigest?: Digest;
}

/** The layer to mount lazily, or undefined when the labels do not describe one (then: ordinary snapshot). */
export function remoteLayerRef(labels: Readonly<Record<string, string>>): RemoteLayerRef | undefined {
  const target = labels[LABEL_TARGET_REF];
  const imageRef = labels[CRI_IMAGE_REF] ?? labels[STARGZ_REFERENCE];
  const layerDigest = labels[CRI_LAYER_DIGEST] ?? labels[STARGZ_DIGEST];
  if (target === undefined || target === '' || imageRef === undefined || imageRef === '') return undefined;
  if (layerDigest === undefined || !isDigest(layerDigest)) return undefined;
  const manifestDigest = labels[CRI_MANIFEST_DIGEST];
  return {
    target,
    imageRef,
    layerDigest,
    ...(manifestDigest !== undefined && isDigest(manifestDigest) ? { manifestDigest } : {}),
  };
}
