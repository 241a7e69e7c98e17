// The layer owner builds each layer once, whether its own mount or its peers ask, including a peer that asks in
// the moment between the build finishing and its index reaching the store (a second stream of the whole layer
// before, seen as 2x registry egress in the four-node index-sharing test). A node asked for a layer it does not own
// relays its owner's index instead of streaming the layer (nodes whose live views differ pick different owners).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { IndexProvider } from '../../src/index/provider.js';
import { IndexStore } from '../../src/index/index-store.js';
import { deserializeIndex } from '../../src/index/serialize.js';
import { createLogger } from '../../src/log.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

/** A store whose writes take a while, so the window between "built" and "stored" is wide. */
class SlowStore extends IndexStore {
  override async put(index: LayerIndex, key: string, signal?: AbortSignal): Promise<void> {
    await new Promise((r) => setTimeout(r, 150));
    await super.put(index, key, signal);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fixture() {
  const layer = makeLayer({ smallFiles: 50, seed: 7 });
  const blob = gzipSync(layer.tar);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-build-once-'));
  dirs.push(dir);
  const state = { streams: 0 };
  let consumed!: () => void;
  const streamed = new Promise<void>((r) => (consumed = r));
  const registry = {
    blobReader: () => {
      const r = new MemoryBlobReader(blob);
      r.stream = () => {
        state.streams++;
        return Promise.resolve(
          Readable.from(
            (function* () {
              for (let at = 0; at < blob.length; at += 64 << 10) yield blob.subarray(at, at + (64 << 10));
              consumed();
            })(),
          ),
        );
      };
      return r;
    },
  } as unknown as RegistryClient;
  const provider = new IndexProvider({
    store: new SlowStore({ dir }),
    registry,
    log: createLogger({ level: 'silent' }),
    chunkSizeBytes: 1 << 20,
    spanBytes: 1 << 20,
  });
  const req = {
    imageRef: 'registry.test/app:1',
    layer: {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: sha256(blob),
      size: blob.length,
    },
    diffId: sha256(layer.tar),
  };
  return { provider, req, state, streamed };
}

describe('IndexProvider.indexForPeer', () => {
  it('streams the layer once for concurrent and just-late requests', async () => {
    const { provider, req, state, streamed } = fixture();
    const first = provider.indexForPeer(req);
    const second = provider.indexForPeer(req);
    // Ask again after the layer has streamed past, while the built index is still being written.
    const late = streamed
      .then(() => new Promise((r) => setTimeout(r, 50)))
      .then(() => provider.indexForPeer(req));
    const all = (await Promise.all([first, second, late])).map((b) => deserializeIndex(b, req.layer.digest));
    expect(state.streams).toBe(1);
    expect(all[1]!.chunks.length).toBe(all[0]!.chunks.length);
    expect(all[2]!.chunks.length).toBe(all[0]!.chunks.length);
    // Once stored, a later request comes from the store.
    await provider.indexForPeer(req);
    expect(state.streams).toBe(1);
  });

  it("relays the owner's index rather than streaming the layer, and builds when the owner fails", async () => {
    const owner = fixture();
    const ownerBytes = await owner.provider.indexForPeer(owner.req);
    const relay = fixture();
    let asked = 0;
    const relayed = await relay.provider.indexForPeer(relay.req, undefined, () => {
      asked++;
      return Promise.resolve(ownerBytes);
    });
    expect(asked).toBe(1);
    expect(relay.state.streams).toBe(0);
    expect(relayed.equals(ownerBytes)).toBe(true);

    const failed = await relay.provider.indexForPeer(relay.req, undefined, () => Promise.resolve(undefined));
    expect(relay.state.streams).toBe(1);
    expect(deserializeIndex(failed, relay.req.layer.digest).chunks.length).toBeGreaterThan(0);
  });

  it('joins a build in flight here instead of asking the owner', async () => {
    const { provider, req, state } = fixture();
    const building = provider.indexForPeer(req);
    while (state.streams === 0) await new Promise((r) => setTimeout(r, 1));
    let asked = 0;
    const joined = provider.indexForPeer(req, undefined, () => {
      asked++;
      return Promise.resolve(undefined);
    });
    await Promise.all([building, joined]);
    expect(asked).toBe(0);
    expect(state.streams).toBe(1);
  });
});
