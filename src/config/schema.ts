// Ferry's configuration schema: every option, its default and its unit, in one place.
import { z } from 'zod';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const credential = z.strictObject({
  host: z.string().min(1),
  username: z.string().optional(),
  password: z.string().optional(),
  identityToken: z.string().optional(),
});

export const configSchema = z.strictObject({
  daemon: z
    .strictObject({
      stateDir: z.string().min(1).default('/var/lib/ferry'),
      runDir: z.string().min(1).default('/run/ferry'),
      logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      shutdownTimeoutMs: z.number().int().positive().default(20_000),
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
        .default(256 * MiB),
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
        .default(MiB),
      spanBytes: z
        .number()
        .int()
        .min(256 * 1024)
        .max(64 * MiB)
        .default(2 * MiB),
    })
    .prefault({}),
  fuse: z
    .strictObject({
      readDeadlineMs: z.number().int().positive().default(60_000),
      attrTimeoutS: z.number().positive().default(3600),
      entryTimeoutS: z.number().positive().default(3600),
    })
    .prefault({}),
});

export type FerryConfig = z.infer<typeof configSchema>;
