// Where peer addresses come from: a static list, DNS (A/AAAA of a headless Service, or SRV), a watched file.
// Every source yields `host:port` ids; the union is the candidate set that membership probes.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import type { Logger } from '../log.js';

/** `host:port` with IPv6 hosts bracketed, so ids compare equal however they were written. */
export function peerId(host: string, port: number): string {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** Parses `host:port` / `[v6]:port`; undefined when malformed. */
export function parsePeer(text: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text.trim()) ?? /^([^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.toLowerCase(), port };
}

export function normalizePeer(text: string): string | undefined {
  const p = parsePeer(text);
  return p === undefined ? undefined : peerId(p.host, p.port);
}

/** The part of node:dns/promises' Resolver discovery uses (tests inject a fake). */
export interface DnsResolver {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number }>>;
}

export interface DiscoveryOptions {
  staticPeers: readonly string[];
  /** A-/AAAA-records (port = defaultPort) or, when it starts with `_`, SRV records (their own ports). */
  dnsName?: string;
  peersFile?: string;
  defaultPort: number;
  log: Logger;
  /** Tests inject a resolver; Ferry uses the system's. */
  resolver?: DnsResolver;
}

export class Discovery {
  private readonly options: DiscoveryOptions;
  private readonly resolver: DnsResolver;
  private watcher: FSWatcher | undefined;

  constructor(options: DiscoveryOptions) {
    this.options = options;
    this.resolver = options.resolver ?? new Resolver({ timeout: 2000, tries: 2 });
  }

  /** The current candidate set (a failing source contributes nothing this round and is logged). */
  async candidates(): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.options.staticPeers) {
      const id = normalizePeer(s);
      if (id !== undefined) out.add(id);
    }
    const { dnsName, peersFile } = this.options;
    if (dnsName !== undefined) for (const p of await this.fromDns(dnsName)) out.add(p);
    if (peersFile !== undefined) for (const p of await this.fromFile(peersFile)) out.add(p);
    return [...out].sort();
  }

  /** Calls `onChange` when the peers file changes (fs.watch; membership's periodic refresh is the fallback). */
  watchFile(onChange: () => void): void {
    const file = this.options.peersFile;
    if (file === undefined || this.watcher !== undefined) return;
    try {
      this.watcher = watch(file, { persistent: false }, () => onChange());
      this.watcher.on('error', () => this.unwatch());
    } catch (e) {
      this.options.log.debug({ err: e, file }, 'cannot watch peers file; polling it');
    }
  }

  unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private async fromDns(name: string): Promise<string[]> {
    const out: string[] = [];
    try {
      if (name.startsWith('_')) {
        for (const srv of await this.resolver.resolveSrv(name)) {
          for (const ip of await this.addresses(srv.name)) out.push(peerId(ip, srv.port));
        }
      } else {
        for (const ip of await this.addresses(name)) out.push(peerId(ip, this.options.defaultPort));
      }
    } catch (e) {
      this.options.log.warn({ err: e, dnsName: name }, `p2p: DNS lookup of ${name} failed`);
    }
    return out;
  }

  private async addresses(name: string): Promise<string[]> {
    const [v4, v6] = await Promise.all([
      this.resolver.resolve4(name).catch(() => [] as string[]),
      this.resolver.resolve6(name).catch(() => [] as string[]),
    ]);
    return [...v4, ...v6];
  }

  private async fromFile(file: string): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      this.options.log.warn({ err: e, file }, `p2p: cannot read peers file ${file}`);
      return [];
    }
    const out: string[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') continue;
      const id = normalizePeer(line);
      if (id === undefined) this.options.log.warn({ file, line }, `p2p: bad peer address in ${file}`);
      else out.push(id);
    }
    return out;
  }
}
