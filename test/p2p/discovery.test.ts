// Peer discovery: static lists normalised, DNS A/AAAA on the default port, SRV with its own ports, a peers file
// with comments; a failing source contributes nothing instead of failing the round.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Discovery, normalizePeer } from '../../src/p2p/discovery.js';

const resolver = {
  resolve4: (name: string) =>
    Promise.resolve(name === 'peers.svc' || name === 'n1.svc' ? ['10.0.0.1', '10.0.0.2'] : []),
  resolve6: (name: string) => Promise.resolve(name === 'peers.svc' ? ['fd00::1'] : []),
  resolveSrv: (name: string) =>
    name === '_p2p._tcp.peers.svc'
      ? Promise.resolve([{ name: 'n1.svc', port: 7000, priority: 0, weight: 0 }])
      : Promise.reject(new Error('ENOTFOUND')),
};

describe('Discovery', () => {
  it('normalises addresses', () => {
    expect(normalizePeer('10.0.0.1:7420')).toBe('10.0.0.1:7420');
    expect(normalizePeer('[FD00::1]:7420')).toBe('[fd00::1]:7420');
    expect(normalizePeer('nohost')).toBeUndefined();
    expect(normalizePeer('h:99999')).toBeUndefined();
  });

  it('unions static peers, DNS A/AAAA records and a peers file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-peers-'));
    const file = join(dir, 'peers');
    writeFileSync(file, '# cluster\n10.0.0.9:7420\n\nbad line\n10.0.0.1:7420 # dup of DNS\n');
    const d = new Discovery({
      staticPeers: ['10.0.0.5:7420'],
      dnsName: 'peers.svc',
      peersFile: file,
      defaultPort: 7420,
      log: silentLogger(),
      resolver,
    });
    expect(await d.candidates()).toEqual(
      ['10.0.0.1:7420', '10.0.0.2:7420', '10.0.0.5:7420', '10.0.0.9:7420', '[fd00::1]:7420'].sort(),
    );
  });

  it('uses SRV ports, and survives a failing lookup', async () => {
    const srv = new Discovery({
      staticPeers: [],
      dnsName: '_p2p._tcp.peers.svc',
      defaultPort: 1,
      log: silentLogger(),
      resolver,
    });
    expect(await srv.candidates()).toEqual(['10.0.0.1:7000', '10.0.0.2:7000']);
    const failing = new Discovery({
      staticPeers: ['a:1'],
      dnsName: '_x._tcp.none',
      defaultPort: 1,
      log: silentLogger(),
      resolver,
    });
    expect(await failing.candidates()).toEqual(['a:1']);
  });
});
