// Ferry's configuration schema: every option, its default and its unit, in one place.
import { z } from 'zod';
import { DEFAULT_CHUNK_SIZE_BYTES } from '../image/layer-index.js';
import { SECRET_HINT, secretProblem } from './secret.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Messages name the rule, never the value (a password must not reach an error or a log). */
const credential = z
  .strictObject({
    /** `host`, `host:port` or a docker-config style URL (`https://index.docker.io/v1/`). */
    host: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[^\s"']+$/, { message: 'must be a host name without spaces or quotes' }),
    /** Basic auth splits `username:password` at the first colon: a colon in the user name would be cut. */
    username: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[^:\r\n]+$/, { message: 'must not contain ":" or line breaks' })
      .optional(),
    password: z.string().min(1).max(4096).optional(),
    identityToken: z.string().min(1).max(16384).optional(),
  })
  .refine(
    (c) =>
      c.identityToken !== undefined
        ? c.username === undefined && c.password === undefined
        : c.username !== undefined && c.password !== undefined,
    { message: 'needs username and password, or identityToken alone' },
  );

/** A shared secret given inline: checked like one read from a file (src/config/secret.ts). */
const inlineSecret = z.string().superRefine((v, ctx) => {
  const problem = secretProblem(v.trim());
  if (problem !== undefined)
    ctx.addIssue({ code: 'custom', message: `refused (${problem}); use ${SECRET_HINT}` });
});

/** `host` or `host:port` as it appears in normalized image references (Docker Hub is `docker.io`). */
const registryHost = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, {
    message: 'must be host or host:port',
  });

export const configSchema = z.strictObject({
  daemon: z
    .strictObject({
      stateDir: z.string().min(1).default('/var/lib/ferry'),
      runDir: z.string().min(1).default('/run/ferry'),
      logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      shutdownTimeoutMs: z.number().int().positive().default(20_000),
      // --- operations (src/metrics/, systemd/) ---
      /** Log destination: `auto` = stdout under systemd (journald sets JOURNAL_STREAM), else stderr. */
      logTo: z.enum(['auto', 'stdout', 'stderr']).default('auto'),
      /** The status socket `ferry status` talks to (HTTP JSON, mode 0600). Defaults to `<runDir>/ferry.sock`. */
      statusSocketPath: z.string().min(1).optional(),
      // --- end operations ---
    })
    .prefault({}),
  cache: z
    .strictObject({
      /** Defaults to `<stateDir>/chunks`. */
      dir: z.string().min(1).optional(),
      maxBytes: z
        .number()
        .int()
        .positive()
        .default(20 * GiB),
      memoryBytes: z
        .number()
        .int()
        .nonnegative()
        // Re-reads hit the page cache (kernel_cache), and a chunk read in parts is read from disk part by part
        // (positioned reads, no re-hash): this tier only spares the disk store a read for the hottest chunks.
        .default(8 * MiB),
      /**
       * Re-hash every chunk read from the disk store. Off by default: chunks are verified before they are
       * written into the private (0700) cache dir, and a file whose size or mtime changed since is re-hashed
       * anyway. Turn on when the cache disk is not trusted to keep bytes (shared or network storage).
       */
      verifyDiskReads: z.boolean().default(false),
    })
    .prefault({}),
  registry: z
    .strictObject({
      requestTimeoutMs: z.number().int().positive().default(30_000),
      retries: z.number().int().nonnegative().max(10).default(3),
      maxConcurrencyPerHost: z.number().int().positive().max(256).default(16),
      insecureHosts: z.array(z.string()).default([]),
      mirrors: z.record(z.string(), z.array(z.string())).default({}),
      dockerConfig: z.boolean().default(true),
      credentials: z.array(credential).default([]),
      platform: z.string().optional(),
    })
    .prefault({}),
  index: z
    .strictObject({
      chunkSizeBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .max(64 * MiB)
        .default(DEFAULT_CHUNK_SIZE_BYTES),
      spanBytes: z
        .number()
        .int()
        .min(256 * 1024)
        .max(64 * MiB)
        .default(2 * MiB),
      /**
       * PEM public keys (files) whose signatures make a published index trusted. Without one, published indexes
       * are used only through a Ferry-enabled image index (`ferry index --push --bind`); others are built.
       */
      trustedKeys: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  snapshotter: z
    .strictObject({
      /** containerd's `[proxy_plugins.ferry] address`. Defaults to `<runDir>/snapshotter.sock`. */
      socketPath: z.string().min(1).optional(),
      /** Snapshot dirs and metadata. Defaults to `<stateDir>/snapshots`; keep it short (overlay option limit). */
      root: z.string().min(1).optional(),
      /** Mount layers lazily when Prepare names one; false = every snapshot is an ordinary one. */
      lazy: z.boolean().default(true),
      /** A lazy mount not ready within this long falls back to an ordinary snapshot (a normal pull). */
      remoteTimeoutMs: z.number().int().positive().default(30_000),
      /**
       * Prove a lazily served layer to be the layer its diffID names, by streaming it once in the background; a
       * layer that fails is withdrawn from its chain ID. containerd reuses committed snapshots by chain ID across
       * images, so an unproven index is trusted with every image that shares the chain. `unsigned`: layers served
       * from a TOC or a bound index (anyone can publish those for their own image); `all`: signed ones too (a
       * trusted key is then trusted with one image, not every image sharing its chains); `off`: none.
       */
      auditLazyLayers: z.enum(['unsigned', 'all', 'off']).default('unsigned'),
      /** The audit starts this long after the mount: a container's start gets the link first. */
      auditDelayMs: z.number().int().nonnegative().default(30_000),
      /**
       * Once a lazily mounted layer is proven, write it out as a plain directory next to its snapshot, which new
       * containers then use as their overlay lower instead of the FUSE mount (native speed; running containers
       * keep theirs). `background`: fetch the chunks still missing at background priority (demand reads go
       * first), then write it (the layer then takes its size in disk twice: cache and directory); `cached`: only
       * once every chunk is in the cache anyway; `off`: always FUSE. One layer at a time.
       */
      materialise: z.enum(['off', 'cached', 'background']).default('background'),
      /** A layer is materialised no sooner than this long after it was mounted (the start gets the link first). */
      materialiseDelayMs: z.number().int().nonnegative().default(300_000),
    })
    .prefault({}),
  fuse: z
    .strictObject({
      // The FUSE timings (resolve.ts hands them on as one FuseTimings object); renamed …S keys: deprecated-keys.ts.
      /** A FUSE read not answered within this long fails with EIO (the fetch continues for the cache). */
      readDeadlineMs: z.number().int().positive().default(60_000),
      /** How long the kernel may cache a file's attributes, and a name's lookup (layers are immutable). */
      attrTimeoutMs: z.number().int().positive().default(3_600_000),
      entryTimeoutMs: z.number().int().positive().default(3_600_000),
      /** Cached "no such name" answers (overlay looks up many names lower layers lack). */
      negativeTimeoutMs: z.number().int().positive().default(3_600_000),
      /**
       * The FUSE server of lazy layers. `raw`: Ferry's own (src/fuse/raw/: 1 MiB reads, READDIRPLUS); `ferry
       * daemon` serves it through a long-lived `ferry fuse-holder` that keeps every /dev/fuse descriptor and
       * replays unanswered requests, so daemon restarts (kill -9 included) do not break running containers;
       * `ferry mount` serves it in-process. `fuse-native`: libfuse 2 through fuse-native, in the mounting
       * process (a daemon restart breaks running containers' layers).
       */
      engine: z.enum(['raw', 'fuse-native']).default('raw'),
      /** The holder's socket (mode 0600). Defaults to `<runDir>/fuse-holder.sock`. */
      holderSocket: z.string().min(1).optional(),
      /** Start a holder when none answers (off when systemd's ferry-fuse.service provides it). */
      spawnHolder: z.boolean().default(true),
      /** A spawned holder with mounts but no daemon for this long unmounts them and exits (0 = never). */
      holderOrphanTimeoutMs: z.number().int().nonnegative().default(600_000),
      /** Layers mounted at once through one holder (each holds one libuv pool thread there). */
      holderMaxMounts: z.number().int().positive().max(1016).default(512),
      /** On stop, reads in flight get this long to finish before the holder replays them to the successor. */
      drainMs: z.number().int().nonnegative().default(2_000),
    })
    .prefault({}),
  prefetch: z
    .strictObject({
      /** Off: no prefetch at mount (startups are still recorded). */
      enabled: z.boolean().default(true),
      /** A start's trace keeps first accesses for at most this long after its first read… */
      windowMs: z.number().int().positive().default(30_000),
      /** …or until no read arrived for this long. */
      quietMs: z.number().int().positive().default(5_000),
      /** Prefetch fetches in flight per image (demand reads always go first in the source's limiter). */
      concurrency: z.number().int().positive().max(256).default(8),
      /** Bytes of trace (or default) chunks prefetched per mount (or per hint: a hint may ask less) at most. */
      budgetBytes: z
        .number()
        .int()
        .nonnegative()
        .default(2 * GiB),
      /** After the trace: fetch nothing more, the rest of the layers the trace touched, or every layer. */
      background: z.enum(['none', 'trace', 'all']).default('none'),
      /**
       * Without any trace: the start set (entrypoint, its interpreter and libraries, from the image config and
       * the layer indexes) is prefetched up to this many bytes (0: none).
       */
      startSetBytes: z
        .number()
        .int()
        .nonnegative()
        .default(16 * MiB),
      /** Without any trace, after the start set: this many bytes from the start of each layer (0: none). */
      defaultBytesPerLayer: z.number().int().nonnegative().default(0),
      /** Chunks a merged trace keeps at most. */
      maxTraceChunks: z.number().int().positive().default(50_000),
      /** Look for a trace published in the registry when there is none locally. */
      pullFromRegistry: z.boolean().default(true),
      // --- prefetch hints (proto/prefetch.proto, src/api/prefetch-*.ts): schedulers say "image X starts soon" ---
      /** Serve the hint API from `ferry daemon`. */
      hintApi: z.boolean().default(true),
      /** Unix socket of the hint API (mode 0600). Defaults to `<runDir>/prefetch.sock`. */
      hintSocketPath: z.string().min(1).optional(),
      /** Also serve it on TCP at host:port (for off-node schedulers); needs `hintTokenFile`. */
      hintListen: z.string().min(1).optional(),
      /** File holding the bearer token TCP callers must send (`authorization: Bearer <token>`); ≥ 32 random bytes. */
      hintTokenFile: z.string().min(1).optional(),
      /**
       * Registries (`host` or `host:port`, as in normalized references: Docker Hub is `docker.io`) a hint may
       * name; a hint for another one is refused with PERMISSION_DENIED. Empty: any registry.
       */
      hintRegistries: z.array(registryHost).max(1000).default([]),
      /** Hint jobs waiting at most; more are refused with RESOURCE_EXHAUSTED. */
      maxQueuedHints: z.number().int().positive().max(100_000).default(256),
      /** Hint jobs running at once. */
      hintConcurrency: z.number().int().positive().max(64).default(2),
      /** Finished hint jobs stay visible to Watch/List this long. */
      hintRetainMs: z.number().int().positive().default(600_000),
      /**
       * A finished hint keeps the image ready for containerd's Prepare calls this long (resolved manifest, layer
       * indexes and trees: the pull then resolves nothing again); 0 keeps nothing.
       */
      hintReadyMs: z.number().int().nonnegative().default(600_000),
      /** Layers kept ready at most over all hinted images (the oldest images are forgotten first). */
      hintReadyMaxLayers: z.number().int().nonnegative().max(10_000).default(128),
      // --- end prefetch hints ---
    })
    .prefault({}),
  // --- readAhead (src/layer/read-ahead*.ts): sequential readers get the following chunks fetched ahead ---
  readAhead: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Bytes fetched ahead of a reader once its reads turn sequential. */
      minWindowBytes: z
        .number()
        .int()
        .positive()
        .default(2 * MiB),
      /** The window doubles while the reader consumes read-ahead chunks, up to this. */
      maxWindowBytes: z
        .number()
        .int()
        .positive()
        .default(32 * MiB),
      /** Read-ahead chunk fetches in flight per open file. */
      maxInFlightChunks: z.number().int().positive().max(256).default(8),
      /** Bytes of read-ahead in flight across all files of a mount; past it no more is started. */
      memoryBytes: z
        .number()
        .int()
        .nonnegative()
        .default(64 * MiB),
    })
    .refine((r) => r.maxWindowBytes >= r.minWindowBytes, {
      message: 'maxWindowBytes must be at least minWindowBytes',
    })
    .prefault({}),
  // --- end readAhead ---
  // --- p2p (src/p2p/): peer chunk sharing; see deploy/README.md ---
  p2p: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** host:port the peer server binds (h2c; authenticated by the cluster secret). */
      listen: z.string().min(1).default('0.0.0.0:7420'),
      /** host:port other peers use for this node (its id in rendezvous hashing); defaults to `listen`. */
      advertise: z.string().min(1).optional(),
      /** Static peers (host:port); may include this node. */
      peers: z.array(z.string()).default([]),
      /** A/AAAA name (peers on the listen port) or `_service._tcp.name` SRV name, re-resolved periodically. */
      dnsName: z.string().min(1).optional(),
      /** A file of host:port lines (# comments), watched for changes. */
      peersFile: z.string().min(1).optional(),
      /** Re-read DNS and the peers file this often. */
      refreshIntervalMs: z.number().int().positive().default(10_000),
      /**
       * File holding the shared cluster secret (preferred), or the secret inline: at least 32 bytes of random
       * data; known placeholders and patterned values are refused.
       */
      clusterSecretFile: z.string().min(1).optional(),
      secret: inlineSecret.optional(),
      /** Try the next owner (or the registry) when a peer has not accepted a request within this long. */
      hedgeAfterMs: z.number().int().nonnegative().default(150),
      /** Abandon an accepted peer request after this long. */
      peerTimeoutMs: z.number().int().positive().default(10_000),
      /**
       * How long a node waits for a layer's owner to build and send its index (a build streams the whole
       * layer) before it builds the index itself.
       */
      indexTimeoutMs: z.number().int().positive().default(300_000),
      /** Owners per chunk (rendezvous hashing), tried in rank order before the registry. */
      ownerCount: z.number().int().positive().max(8).default(2),
      probeIntervalMs: z.number().int().positive().default(1000),
      /** A peer that does not answer a probe within this long is down (re-probed with backoff). */
      probeTimeoutMs: z.number().int().positive().default(300),
      /** A peer that sent bad bytes is avoided this long. */
      penaltyMs: z.number().int().positive().default(60_000),
      /** Requests in flight per requesting peer; more get 503 (the requester goes elsewhere). */
      maxConcurrentPerPeer: z.number().int().positive().default(64),
      /** Requests per second per requesting peer (token bucket); 0 = unlimited. */
      maxRequestsPerSecondPerPeer: z.number().int().nonnegative().default(0),
    })
    .prefault({}),
  // --- end p2p ---
  // --- metrics (src/metrics/): Prometheus endpoint; see README "Operating Ferry" ---
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** host:port serving /metrics, /healthz and /readyz (no auth: keep it on loopback or a private net). */
      address: z.string().min(1).default('127.0.0.1:9650'),
      /** An on-demand read in flight longer than this counts as hung (ferry_reads_hung). */
      hungReadMs: z.number().int().positive().default(10_000),
      /** Layers given their own ferry_layer_fetched_ratio series at most. */
      maxLayerSeries: z.number().int().nonnegative().max(1000).default(50),
    })
    .prefault({}),
  // --- end metrics ---
});

export type FerryConfig = z.infer<typeof configSchema>;
