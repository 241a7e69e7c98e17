// `ferry doctor`: checks what a node needs for Ferry (FUSE device and libfuse, overlayfs, kernel, containerd config,
// sockets and their modes, free disk for the cache, the daemon answering) and prints what to fix; exit 1 on a FAIL.
import { constants } from 'node:fs';
import { access, lstat, readFile, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import { loadConfig, type ResolvedConfig } from '../config/load.js';
import { checkContainerdConfig } from '../config/containerd-config.js';
import { fetchStatus } from '../metrics/status-client.js';
import { formatBytes } from './format.js';
import { runChecked } from '../os/run.js';

const GiB = 1024 ** 3;

export type Severity = 'ok' | 'warn' | 'fail';

export interface Finding {
  check: string;
  severity: Severity;
  message: string;
  fix?: string;
}

export interface DoctorOptions {
  config?: string;
  containerdConfig?: string;
  json?: boolean;
  /** For tests: alternative system paths. */
  devFuse?: string;
  procFilesystems?: string;
}

const finding = (check: string, severity: Severity, message: string, fix?: string): Finding =>
  fix === undefined ? { check, severity, message } : { check, severity, message, fix };

async function fuseChecks(o: DoctorOptions): Promise<Finding[]> {
  const dev = o.devFuse ?? '/dev/fuse';
  const out: Finding[] = [];
  const st = await lstat(dev).catch(() => undefined);
  if (st === undefined || !st.isCharacterDevice())
    out.push(
      finding(
        'fuse',
        'fail',
        `${dev} is missing`,
        'modprobe fuse (or run the container with --device /dev/fuse)',
      ),
    );
  else
    out.push(
      await access(dev, constants.R_OK | constants.W_OK).then(
        () => finding('fuse', 'ok', `${dev} is usable`),
        () => finding('fuse', 'fail', `${dev} is not read-writable by this user`, 'run ferry as root'),
      ),
    );
  out.push(
    await runChecked('fusermount', ['-V']).then(
      (output) => finding('libfuse', 'ok', `fusermount: ${output}`),
      () => finding('libfuse', 'fail', 'fusermount is not on PATH', 'apt-get install fuse3 libfuse2'),
    ),
  );
  const lib = await runChecked('ldconfig', ['-p']).then(
    (output) => /libfuse\.so\.2\b/.test(output),
    () => undefined,
  );
  if (lib === false)
    out.push(finding('libfuse', 'fail', 'libfuse.so.2 is not installed', 'apt-get install libfuse2'));
  else if (lib === true) out.push(finding('libfuse', 'ok', 'libfuse.so.2 is installed'));
  return out;
}

async function kernelChecks(o: DoctorOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  const fsText = await readFile(o.procFilesystems ?? '/proc/filesystems', 'utf8').catch(() => '');
  const names = new Set(fsText.split('\n').map((l) => l.trim().split(/\s+/).pop()));
  out.push(
    names.has('overlay')
      ? finding('overlayfs', 'ok', 'overlay is in /proc/filesystems')
      : finding('overlayfs', 'fail', 'the kernel has no overlayfs', 'modprobe overlay'),
  );
  if (!names.has('fuse') && !names.has('fuseblk'))
    out.push(finding('fuse', 'warn', 'fuse is not in /proc/filesystems yet', 'modprobe fuse'));
  const [major = 0, minor = 0] = release()
    .split('.')
    .map((n) => parseInt(n, 10));
  const version = `${major}.${minor}`;
  if (major < 4 || (major === 4 && minor < 18))
    out.push(
      finding(
        'kernel',
        'fail',
        `kernel ${release()} is too old`,
        'use kernel 4.18 or newer (5.10+ recommended)',
      ),
    );
  else if (major < 5 || (major === 5 && minor < 10))
    out.push(finding('kernel', 'warn', `kernel ${version}: works, but 5.10+ is recommended`));
  else out.push(finding('kernel', 'ok', `kernel ${release()}`));
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    out.push(
      finding(
        'privileges',
        'warn',
        'not root: mounting needs CAP_SYS_ADMIN',
        'run ferry (and doctor) as root',
      ),
    );
  return out;
}

async function containerdChecks(o: DoctorOptions, socketPath: string): Promise<Finding[]> {
  const path = o.containerdConfig ?? '/etc/containerd/config.toml';
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [
      finding(
        'containerd',
        'fail',
        `cannot read ${path}`,
        'write it (containerd config default) and add the snippet `ferry install` prints',
      ),
    ];
  }
  return checkContainerdConfig(text, { name: 'ferry', socketPath }).map((f) =>
    finding('containerd', f.ok ? 'ok' : 'fail', `${path}: ${f.message}`, f.fix),
  );
}

async function socketCheck(path: string, what: string, maxMode: number): Promise<Finding> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined)
    return finding(
      'sockets',
      'warn',
      `${what} ${path} does not exist (daemon not running?)`,
      'systemctl start ferry',
    );
  if (!st.isSocket())
    return finding('sockets', 'fail', `${path} is not a socket`, `remove ${path} and restart ferry`);
  const mode = st.mode & 0o777;
  if ((mode & ~maxMode) !== 0)
    return finding(
      'sockets',
      'fail',
      `${what} ${path} has mode ${mode.toString(8)}`,
      `chmod ${maxMode.toString(8)} ${path}`,
    );
  return finding('sockets', 'ok', `${what} ${path} (mode ${mode.toString(8)})`);
}

async function diskCheck(config: ResolvedConfig): Promise<Finding> {
  const dir = config.paths.cacheDir;
  let probe = dir;
  for (;;) {
    const s = await statfs(probe).catch(() => undefined);
    if (s !== undefined) {
      const free = s.bavail * s.bsize;
      const want = Math.min(config.cache.maxBytes, 10 * GiB);
      if (free < GiB)
        return finding(
          'disk',
          'fail',
          `${formatBytes(free)} free under ${probe}`,
          'free disk space or move cache.dir',
        );
      if (free < want)
        return finding(
          'disk',
          'warn',
          `${formatBytes(free)} free under ${probe}; cache.maxBytes is ${formatBytes(config.cache.maxBytes)}`,
          'lower cache.maxBytes or free space',
        );
      return finding('disk', 'ok', `${formatBytes(free)} free for the cache (${dir})`);
    }
    const parent = probe.replace(/\/[^/]+\/?$/, '') || '/';
    if (parent === probe) return finding('disk', 'warn', `cannot stat ${dir}`);
    probe = parent;
  }
}

export async function runChecks(o: DoctorOptions): Promise<Finding[]> {
  const config = await loadConfig(o.config);
  const socketPath = config.paths.snapshotterSocket;
  const status = config.paths.statusSocket;
  const findings = [
    ...(await fuseChecks(o)),
    ...(await kernelChecks(o)),
    ...(await containerdChecks(o, socketPath)),
    await socketCheck(socketPath, 'snapshotter socket', 0o660),
    await socketCheck(status, 'status socket', 0o600),
    await diskCheck(config),
  ];
  findings.push(
    await fetchStatus(status, { timeoutMs: 3000 }).then(
      (s) => finding('daemon', 'ok', `ferry daemon pid ${s.pid} answers (${s.layers.length} lazy layers)`),
      (e: unknown) =>
        finding('daemon', 'warn', e instanceof Error ? e.message : String(e), 'systemctl start ferry'),
    ),
  );
  return findings;
}

export async function runDoctor(o: DoctorOptions): Promise<void> {
  const findings = await runChecks(o);
  const failed = findings.filter((f) => f.severity === 'fail').length;
  if (o.json === true) process.stdout.write(`${JSON.stringify({ ok: failed === 0, findings }, null, 2)}\n`);
  else {
    const tag = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
    for (const f of findings) {
      process.stdout.write(`${tag[f.severity]}  ${f.check.padEnd(10)}  ${f.message}\n`);
      if (f.severity !== 'ok' && f.fix !== undefined)
        process.stdout.write(`      ${''.padEnd(10)}  fix: ${f.fix}\n`);
    }
    process.stdout.write(
      failed === 0 ? 'ferry doctor: no problems found\n' : `ferry doctor: ${failed} problem(s) to fix\n`,
    );
  }
  if (failed > 0) process.exitCode = 1;
}
