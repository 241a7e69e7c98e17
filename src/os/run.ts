// Running a helper program (mount, umount, fusermount, systemd-notify): one child-process runner for Ferry, so
// exit codes, output and aborts are handled alike everywhere.
import { spawn } from 'node:child_process';

export interface RunResult {
  /** Exit code; null when a signal ended it. */
  code: number | null;
  /** stdout and stderr as they came, trimmed. */
  output: string;
}

export interface RunOptions {
  /** What the child gets as stdin, stdout, stderr and further fds (a number passes that descriptor). */
  stdio?: Array<'ignore' | 'pipe' | number>;
  signal?: AbortSignal | undefined;
  /** Killed (SIGTERM) after this long. */
  timeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

/** Runs `command` to its end; rejects only when it cannot be started or is aborted. */
export function run(command: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(command, args, {
      stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'],
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.timeoutMs === undefined ? {} : { timeout: o.timeoutMs }),
      ...(o.env === undefined ? {} : { env: o.env }),
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', rej);
    child.once('close', (code) => res({ code, output: output.trim() }));
  });
}

/** Like run, but a non-zero exit rejects too (with the output in the message). */
export async function runChecked(
  command: string,
  args: readonly string[],
  o: RunOptions = {},
): Promise<string> {
  const r = await run(command, args, o);
  if (r.code !== 0)
    throw new Error(`${command} exited ${r.code ?? 'on a signal'}${r.output === '' ? '' : `: ${r.output}`}`);
  return r.output;
}
