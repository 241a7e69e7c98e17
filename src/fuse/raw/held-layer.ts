// One lazy layer served through the FUSE holder: mounted fresh, or adopted from a predecessor daemon when the
// holder still has it and the layer's tree is provably the same (node ids are inode numbers of that tree).
import { createHash } from 'node:crypto';
import { IntegrityError, isFerryError } from '../../errors.js';
import type { LayerTree } from '../../layer/layer-tree.js';
import type { HeldMount, HolderClient, HolderSession } from '../holder/client.js';
import { createRawLayerServer, type RawLayerServer, type RawLayerServerOptions } from './layer-server.js';
import { setReadAhead } from './device.js';
import { RAW_MOUNT_OPTIONS } from './direct-layer.js';
import { MAX_READ_BYTES } from './protocol.js';

export type HeldLayerOptions = RawLayerServerOptions & {
  client: HolderClient;
  mountpoint: string;
  /** Recorded with the mount, so a successor knows which image the layer came from. */
  imageRef: string;
};

export interface HeldLayer {
  readonly mountpoint: string;
  readonly server: RawLayerServer;
  /** Requests being answered now. */
  inFlight(): number;
  /** Stops answering; waits up to `drainMs` for answers in flight. The holder keeps the mount. */
  detach(drainMs: number): Promise<void>;
  /** Unmounts through the holder (idempotent). */
  unmount(): Promise<void>;
}

/** Names the tree's node ids: a successor may adopt a mount only if its tree gives every id the same node. */
export function treeFingerprint(tree: LayerTree): string {
  const rows: string[] = [];
  for (const [path, n] of tree.paths()) rows.push(`${n.ino}\0${path}\0${n.type}\0${n.size}\0${n.mode}`);
  rows.sort();
  const h = createHash('sha256');
  for (const r of rows) h.update(r).update('\n');
  return `sha256:${h.digest('hex')}`;
}

const META_LAYER = 'layer';
const META_TREE = 'tree';
const META_IMAGE = 'image';

/** The holder's record of `held` matches this layer and tree: adopting it serves the same bytes. */
export function canAdopt(held: HeldMount, tree: LayerTree): boolean {
  return held.meta[META_LAYER] === tree.index.layerDigest && held.meta[META_TREE] === treeFingerprint(tree);
}

function serve(o: HeldLayerOptions, session: HolderSession, server: RawLayerServer): HeldLayer {
  let inFlight = 0;
  let detached = false;
  let drained: (() => void) | undefined;
  session.serve({
    handle: async (request) => {
      if (detached) return new Promise<undefined>(() => undefined); // the holder replays it to the next daemon
      inFlight++;
      try {
        return await server.handle(request);
      } finally {
        inFlight--;
        if (inFlight === 0) drained?.();
      }
    },
  });
  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: o.mountpoint,
    server,
    inFlight: () => inFlight,
    async detach(drainMs) {
      detached = true;
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, drainMs).unref();
        });
      }
      server.close();
    },
    unmount() {
      unmounting ??= (async () => {
        detached = true;
        server.close();
        await o.client.unmount(o.mountpoint).catch((e: unknown) => {
          if (!isFerryError(e, 'NOT_FOUND')) throw e; // already gone (unmounted from outside)
        });
        o.log.info({ mountpoint: o.mountpoint, layer: o.tree.index.layerDigest }, 'layer unmounted');
      })();
      return unmounting;
    },
  };
}

const serverFor = (o: HeldLayerOptions): RawLayerServer => createRawLayerServer(o);

/** Mounts the layer through the holder (the holder owns the /dev/fuse descriptor from now on). */
export async function mountHeldLayer(o: HeldLayerOptions, signal?: AbortSignal): Promise<HeldLayer> {
  const server = serverFor(o);
  let session: HolderSession;
  try {
    session = await o.client.mount(
      {
        id: o.mountpoint,
        mountpoint: o.mountpoint,
        fsname: 'ferry',
        subtype: 'ferry', // fstype fuse.ferry: our mounts are recognisable in /proc/self/mountinfo
        options: RAW_MOUNT_OPTIONS,
        meta: {
          [META_LAYER]: o.tree.index.layerDigest,
          [META_TREE]: treeFingerprint(o.tree),
          [META_IMAGE]: o.imageRef,
        },
      },
      signal,
    );
  } catch (e) {
    server.close();
    throw e;
  }
  const readAhead = o.maxReadaheadBytes ?? MAX_READ_BYTES;
  await setReadAhead(o.mountpoint, readAhead).catch((e: unknown) =>
    o.log.warn({ mountpoint: o.mountpoint, err: String(e) }, 'kernel read-ahead not raised; 128 KiB READs'),
  );
  o.log.info({ mountpoint: o.mountpoint, layer: o.tree.index.layerDigest }, 'layer mounted');
  return serve(o, session, server);
}

/** Serves a mount a predecessor left with the holder: no remount, the kernel's node ids stay valid. */
export function adoptHeldLayer(o: HeldLayerOptions & { held: HeldMount }): HeldLayer {
  if (!canAdopt(o.held, o.tree))
    throw new IntegrityError(
      `held mount at ${o.mountpoint} was made from another tree than layer ${o.tree.index.layerDigest}'s index`,
    );
  const server = serverFor(o);
  server.adopt(o.held.init);
  const session = o.client.attach(o.held.id);
  o.log.info({ mountpoint: o.mountpoint, layer: o.tree.index.layerDigest }, 'layer adopted from the holder');
  return serve(o, session, server);
}
