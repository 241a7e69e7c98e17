// Test/bench helper: runs `ferry mount --json` as a child and exposes every event it prints (mounted,
// prefetched, unmounted); reads a working set from another child (never from the FUSE server's own process).
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { FERRY_BIN, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';

const run = promisify(execFile);

export interface Event {
  event: string;
  [k: string]: unknown;
}

export interface MountProcess {
  proc: ChildProcessWithoutNullStreams;
  /** Resolves with the first event named `name` (rejects if the process exits first or after timeoutMs). */
  waitFor(name: string, timeoutMs?: number): Promise<Event>;
  exited: Promise<{ code: number | null; stderr: string }>;
  stop(): Promise<{ code: number | null; stderr: string }>;
}

export function spawnMount(ref: string, target: string, env: FerryEnv): MountProcess {
  requireBuild();
  const proc = spawn(
    process.execPath,
    [FERRY_BIN, 'mount', ref, target, '--json', '--config', env.configPath],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const events: Event[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Event);
    } catch {
      return;
    }
    for (const l of listeners) l();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<{ code: number | null; stderr: string }>((res) =>
    proc.on('exit', (code) => {
      exitCode = code;
      for (const l of listeners) l();
      res({ code, stderr });
    }),
  );
  const waitFor = (name: string, timeoutMs = 120_000): Promise<Event> =>
    new Promise((res, rej) => {
      const check = (): void => {
        const e = events.find((x) => x.event === name);
        if (e !== undefined) done(() => res(e));
        else if (exitCode !== undefined)
          done(() => rej(new Error(`ferry mount exited (${exitCode}) before "${name}": ${stderr}`)));
      };
      const timer = setTimeout(
        () => done(() => rej(new Error(`no "${name}" event in ${timeoutMs} ms: ${stderr}`))),
        timeoutMs,
      );
      const done = (f: () => void): void => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });
  return {
    proc,
    waitFor,
    exited,
    async stop() {
      if (exitCode === undefined) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Reads every file in `paths` (relative to `root`) fully, in order, from a child process; returns its ms. */
export async function readWorkingSet(root: string, paths: readonly string[]): Promise<number> {
  const script =
    "const fs=require('fs');const t=performance.now();let n=0;" +
    'for (const p of JSON.parse(process.argv[1])) n+=fs.readFileSync(p).length;' +
    'process.stdout.write(JSON.stringify({ms:performance.now()-t,n}))';
  const { stdout } = await run(
    process.execPath,
    ['-e', script, '--', JSON.stringify(paths.map((p) => join(root, p)))],
    {
      maxBuffer: 1 << 20,
    },
  );
  return (JSON.parse(stdout) as { ms: number }).ms;
}

/** Runs `ferry <args> --config <env>` and returns stdout. */
export async function ferryWith(args: string[], env: FerryEnv): Promise<string> {
  requireBuild();
  const { stdout } = await run(process.execPath, [FERRY_BIN, ...args, '--config', env.configPath], {
    maxBuffer: 256 << 20,
  });
  return stdout;
}
