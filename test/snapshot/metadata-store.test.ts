// MetadataStore: key → id mapping, parent and kind checks, commit/remove rules, and crash safety (a writer
// killed with SIGKILL mid-stream leaves a database whose every transaction is whole).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { isFerryError } from '../../src/errors.js';
import { MetadataStore } from '../../src/snapshot/metadata-store.js';

const tmpDb = () => join(mkdtempSync(join(tmpdir(), 'ferry-meta-')), 'metadata.db');
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isFerryError(e) ? e.code : `non-ferry: ${String(e)}`;
  }
};

describe('MetadataStore', () => {
  it('maps keys with /, spaces and : to integer ids and keeps parents', () => {
    const s = new MetadataStore({ path: tmpDb() });
    const key = 'default/12/extract-1711111111111111111-AbCd sha256:0123';
    const a = s.create({ key, parent: '', kind: 'active', labels: { a: '1' }, nowMs: 1 });
    expect(a.id).toBeGreaterThan(0);
    const c = s.commit({
      key,
      name: 'default/13/sha256:0123',
      labels: {},
      sizeBytes: 10,
      inodes: 2,
      remote: false,
      nowMs: 2,
    });
    expect(c.id).toBe(a.id); // commit keeps the id (and so the directory)
    expect(s.get(key)).toBeUndefined();
    const child = s.create({
      key: 'k8s.io/57/ctr',
      parent: 'default/13/sha256:0123',
      kind: 'view',
      labels: {},
      nowMs: 3,
    });
    expect(child.parent).toBe('default/13/sha256:0123');
    expect(s.parents(child).map((p) => p.name)).toEqual(['default/13/sha256:0123']);
    expect(c.sizeBytes).toBe(10);
    s.close();
  });

  it('returns containerd error classes for bad transitions', () => {
    const s = new MetadataStore({ path: tmpDb() });
    s.create({ key: 'a', parent: '', kind: 'active', labels: {}, nowMs: 1 });
    s.create({ key: 'v', parent: '', kind: 'view', labels: {}, nowMs: 1 });
    expect(codeOf(() => s.create({ key: 'a', parent: '', kind: 'active', labels: {}, nowMs: 1 }))).toBe(
      'ALREADY_EXISTS',
    );
    expect(
      codeOf(() => s.create({ key: 'b', parent: 'missing', kind: 'active', labels: {}, nowMs: 1 })),
    ).toBe('NOT_FOUND');
    expect(codeOf(() => s.create({ key: 'b', parent: 'a', kind: 'active', labels: {}, nowMs: 1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    const commit = (key: string, name: string) => () =>
      s.commit({ key, name, labels: {}, sizeBytes: 0, inodes: 0, remote: false, nowMs: 2 });
    expect(codeOf(commit('missing', 'x'))).toBe('NOT_FOUND');
    expect(codeOf(commit('v', 'x'))).toBe('FAILED_PRECONDITION');
    expect(codeOf(commit('a', 'v'))).toBe('ALREADY_EXISTS');
    expect(codeOf(commit('a', 'c'))).toBe('ok');
    expect(codeOf(commit('c', 'd'))).toBe('FAILED_PRECONDITION');
    s.create({ key: 'child', parent: 'c', kind: 'active', labels: {}, nowMs: 3 });
    expect(codeOf(() => s.remove('c'))).toBe('FAILED_PRECONDITION');
    expect(codeOf(() => s.remove('child'))).toBe('ok');
    expect(codeOf(() => s.remove('c'))).toBe('ok');
    expect(codeOf(() => s.remove('c'))).toBe('NOT_FOUND');
    s.close();
  });

  it('never reuses an id, even across reopen (old dirs cannot be mistaken for new snapshots)', () => {
    const path = tmpDb();
    let s = new MetadataStore({ path });
    const first = s.create({ key: 'a', parent: '', kind: 'active', labels: {}, nowMs: 1 }).id;
    s.remove('a');
    s.close();
    s = new MetadataStore({ path });
    expect(s.create({ key: 'a', parent: '', kind: 'active', labels: {}, nowMs: 1 }).id).toBeGreaterThan(
      first,
    );
    s.close();
  });

  it('rolls back a failed transaction as a whole', () => {
    const s = new MetadataStore({ path: tmpDb() });
    expect(() =>
      s.transaction(() => {
        s.create({ key: 'x', parent: '', kind: 'active', labels: {}, nowMs: 1 });
        s.create({ key: 'x', parent: '', kind: 'active', labels: {}, nowMs: 1 });
      }),
    ).toThrow();
    expect(s.get('x')).toBeUndefined();
    s.close();
  });

  it('survives kill -9 of a writer mid-stream: integrity ok, every transaction whole', async () => {
    const path = tmpDb();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/snapshot/fixtures/store-writer.ts', path],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let last = -1;
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        last = Number(line);
        if (last === 300) {
          child.kill('SIGKILL'); // while it keeps writing
          resolve();
        }
      });
      void exited.then(() => (last < 300 ? reject(new Error(`writer died early: ${stderr}`)) : undefined));
    });
    expect(await exited).toBe('SIGKILL');

    const s = new MetadataStore({ path });
    expect(s.integrityCheck()).toBe('ok');
    const all = s.all();
    const committed = all.filter((r) => r.kind === 'committed');
    // Every transaction either happened entirely (committed + relabelled) or not at all.
    expect(all.filter((r) => r.kind !== 'committed')).toEqual([]);
    expect(committed.length).toBeGreaterThanOrEqual(last + 1);
    for (const [i, r] of committed.entries()) {
      expect(r.name).toBe(`c${i}`);
      expect(r.parent).toBe(i === 0 ? '' : `c${i - 1}`);
      expect(r.labels).toEqual({ i: String(i), done: 'yes' });
    }
    // And it is writable again.
    s.create({ key: 'after', parent: `c${committed.length - 1}`, kind: 'active', labels: {}, nowMs: 1 });
    s.close();
  });
});
