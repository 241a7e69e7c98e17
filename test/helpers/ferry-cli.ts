// Runs the built `ferry` binary as a child process (as a user would), with a throwaway config and state.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { keyPair } from './signing-key.js';

const run = promisify(execFile);
export const FERRY_BIN = resolve(import.meta.dirname, '../../bin/ferry.js');
const DIST_MAIN = resolve(import.meta.dirname, '../../dist/main.js');

export function requireBuild(): void {
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` first`);
}

export interface FerryEnv {
  dir: string;
  configPath: string;
}

/**
 * A fresh state dir, run dir and config (an empty cache: a "new node"). `registryToml` adds lines to the
 * `[registry]` table; `extraToml` appends other tables. The node trusts index artifacts signed with the tests'
 * default key (`keyPair()`), as a production node trusts its publisher's key; `trustedKeys` replaces that list.
 */
export function ferryEnv(extraToml = '', registryToml = '', trustedKeys = [keyPair().publicPath]): FerryEnv {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-node-'));
  const configPath = join(dir, 'config.toml');
  const keys = `trustedKeys = ${JSON.stringify(trustedKeys)}\n`;
  // One [index] table: keep the test's own keys in it.
  const extra = extraToml.includes('[index]\n')
    ? extraToml.replace('[index]\n', `[index]\n${keys}`)
    : `${extraToml}\n[index]\n${keys}`;
  writeFileSync(
    configPath,
    `[daemon]\nstateDir = "${dir}/state"\nrunDir = "${dir}/run"\n\n[cache]\nmaxBytes = 2147483648\nmemoryBytes = 33554432\n\n` +
      `[registry]\ndockerConfig = false\n${registryToml}\n\n${extra}\n`,
  );
  return { dir, configPath };
}

/**
 * Runs `ferry <args>`. `ferry index … --push` signs the artifact with the tests' default key unless the args
 * name a key (`--sign-key`) or `sign` is false: published indexes reach other nodes only signed or bound.
 */
export async function ferry(
  args: string[],
  env: FerryEnv,
  o: { sign?: boolean } = {},
): Promise<{ stdout: string; stderr: string }> {
  requireBuild();
  const signed =
    args[0] === 'index' && args.includes('--push') && !args.includes('--sign-key') && o.sign !== false
      ? [...args, '--sign-key', keyPair().privatePath]
      : args;
  const withConfig = ['index', 'mount', 'umount'].includes(args[0] ?? '')
    ? [...signed, '--config', env.configPath]
    : signed;
  return run(process.execPath, [FERRY_BIN, ...withConfig], { maxBuffer: 256 << 20 });
}

export interface MountEvent {
  event: string;
  [k: string]: unknown;
}

export interface RunningMount {
  proc: ChildProcessWithoutNullStreams;
  mounted: MountEvent;
  /** Resolves with the `unmounted` event when the process exits. */
  exited: Promise<{ code: number | null; unmounted: MountEvent | undefined; stderr: string }>;
}

/** Starts `ferry mount --json` (of `bin`, default this checkout's) and waits for its `mounted` event. */
export async function startMount(
  ref: string,
  target: string,
  env: FerryEnv,
  timeoutMs = 120_000,
  extraArgs: readonly string[] = [],
  bin = FERRY_BIN,
): Promise<RunningMount> {
  requireBuild();
  const proc = spawn(
    process.execPath,
    [bin, 'mount', ref, target, '--json', '--config', env.configPath, ...extraArgs],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const events: MountEvent[] = [];
  let onEvent: (() => void) | undefined;
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as MountEvent);
      onEvent?.();
    } catch {
      /* not an event line */
    }
  });
  const exited = new Promise<{ code: number | null; unmounted: MountEvent | undefined; stderr: string }>(
    // 'close', not 'exit': the `unmounted` line may still be in the pipe when the process has exited.
    (res) =>
      proc.on('close', (code) =>
        res({ code, unmounted: events.find((e) => e.event === 'unmounted'), stderr }),
      ),
  );
  const mounted = await new Promise<MountEvent>((res, rej) => {
    const timer = setTimeout(
      () => rej(new Error(`ferry mount did not come up in ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    onEvent = () => {
      const m = events.find((e) => e.event === 'mounted');
      if (m) {
        clearTimeout(timer);
        res(m);
      }
    };
    void exited.then(({ code }) => {
      clearTimeout(timer);
      rej(new Error(`ferry mount exited (${code}) before mounting: ${stderr}`));
    });
  });
  return { proc, mounted, exited };
}

/** The tree description of `dir`, computed in a child process (never read a FUSE mount from its own server). */
export async function treeManifest(
  dir: string,
): Promise<{ entries: Record<string, Record<string, unknown>>; hardlinks: string[] }> {
  const script = resolve(import.meta.dirname, 'tree-manifest.mjs');
  const { stdout } = await run(process.execPath, [script, dir], { maxBuffer: 512 << 20 });
  return JSON.parse(stdout) as { entries: Record<string, Record<string, unknown>>; hardlinks: string[] };
}

export function writeFileIn(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
