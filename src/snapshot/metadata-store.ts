// The snapshot metadata: one SQLite database (node:sqlite, WAL) whose transactions survive kill -9. Keys map
// to never-reused integer ids; the ids name the snapshot directories. Checks and writes happen in one transaction.
import { chmodSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { FerryError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { SnapshotInfo, SnapshotKind } from './types.js';

export interface SnapshotRecord extends SnapshotInfo {
  readonly id: number;
  readonly parentId: number | undefined;
  readonly sizeBytes: number;
  readonly inodes: number;
  /** Mounted lazily by the RemoteFileSystem (restored from labels at start). */
  readonly remote: boolean;
  /** A remote layer also written out as a plain directory (`<dir>/mat`): new mounts use it instead of FUSE. */
  readonly materialised: boolean;
}

interface Row {
  id: number;
  key: string;
  parent_id: number | null;
  parent_key: string | null;
  kind: string;
  created_ms: number;
  updated_ms: number;
  labels: string;
  size_bytes: number;
  inodes: number;
  remote: number;
  materialised: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent_id INTEGER REFERENCES snapshots(id),
  kind TEXT NOT NULL CHECK (kind IN ('view', 'active', 'committed')),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  size_bytes INTEGER NOT NULL DEFAULT 0,
  inodes INTEGER NOT NULL DEFAULT 0,
  remote INTEGER NOT NULL DEFAULT 0,
  materialised INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
`;

const SELECT = `SELECT s.*, p.key AS parent_key FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id`;

function toRecord(r: Row): SnapshotRecord {
  return {
    id: r.id,
    name: r.key,
    parent: r.parent_key ?? '',
    parentId: r.parent_id ?? undefined,
    kind: r.kind as SnapshotKind,
    createdAtMs: r.created_ms,
    updatedAtMs: r.updated_ms,
    labels: JSON.parse(r.labels) as Record<string, string>,
    sizeBytes: r.size_bytes,
    inodes: r.inodes,
    remote: r.remote !== 0,
    materialised: r.materialised !== 0,
  };
}

export interface MetadataStoreOptions {
  /** The database file (created if missing). */
  path: string;
}

export interface CreateSnapshot {
  key: string;
  parent: string;
  kind: 'active' | 'view';
  labels: Readonly<Record<string, string>>;
  nowMs: number;
}

export interface CommitSnapshot {
  key: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  sizeBytes: number;
  inodes: number;
  remote: boolean;
  nowMs: number;
}

export class MetadataStore {
  private readonly db: DatabaseSync;
  private savepoints = 0;

  constructor(options: MetadataStoreOptions) {
    this.db = new DatabaseSync(options.path);
    // Owner-only whatever the umask (SQLite gives its -wal and -shm files the database file's mode). Once, at
    // start: not a hot path.
    if (options.path !== ':memory:') chmodSync(options.path, 0o600);
    // WAL: a transaction is either fully in the log or not at all after a crash; NORMAL syncs at checkpoints,
    // which is enough against a killed process (the OS still holds the pages).
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.db.exec('PRAGMA foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Databases from before materialised layers lack the column; adding it keeps every record as it was.
    const columns = this.db.prepare('PRAGMA table_info(snapshots)').all() as Array<{ name?: unknown }>;
    if (!columns.some((c) => c.name === 'materialised'))
      this.db.exec('ALTER TABLE snapshots ADD COLUMN materialised INTEGER NOT NULL DEFAULT 0');
  }

  get(key: string): SnapshotRecord | undefined {
    const row = this.db.prepare(`${SELECT} WHERE s.key = ?`).get(key) as unknown as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Like get, but a miss is NOT_FOUND naming the key. */
  require(key: string): SnapshotRecord {
    const r = this.get(key);
    if (r === undefined) throw new NotFoundError(`snapshot ${JSON.stringify(key)} does not exist`);
    return r;
  }

  all(): SnapshotRecord[] {
    return (this.db.prepare(`${SELECT} ORDER BY s.id`).all() as unknown as Row[]).map(toRecord);
  }

  /** Parents of `record`, nearest first. */
  parents(record: SnapshotRecord): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    const byId = this.db.prepare(`${SELECT} WHERE s.id = ?`);
    for (let id = record.parentId; id !== undefined;) {
      const row = byId.get(id) as unknown as Row | undefined;
      if (row === undefined) break;
      const r = toRecord(row);
      out.push(r);
      id = r.parentId;
    }
    return out;
  }

  hasChildren(id: number): boolean {
    return this.db.prepare('SELECT 1 FROM snapshots WHERE parent_id = ? LIMIT 1').get(id) !== undefined;
  }

  /** Creates an active or view snapshot. Errors as containerd's storage.CreateSnapshot. */
  create(c: CreateSnapshot): SnapshotRecord {
    return this.transaction((): SnapshotRecord => {
      if (this.get(c.key) !== undefined)
        throw new FerryError('ALREADY_EXISTS', `snapshot ${JSON.stringify(c.key)}: already exists`);
      let parentId: number | null = null;
      if (c.parent !== '') {
        const p = this.get(c.parent);
        if (p === undefined)
          throw new NotFoundError(`parent snapshot ${JSON.stringify(c.parent)} does not exist`);
        if (p.kind !== 'committed')
          throw new InvalidArgumentError(`parent ${JSON.stringify(c.parent)} is not committed snapshot`);
        parentId = p.id;
      }
      this.db
        .prepare(
          'INSERT INTO snapshots (key, parent_id, kind, created_ms, updated_ms, labels) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(c.key, parentId, c.kind, c.nowMs, c.nowMs, JSON.stringify(c.labels));
      return this.require(c.key);
    });
  }

  /** Turns active `key` into committed `name` (same id, same parent). Errors as storage.CommitActive. */
  commit(c: CommitSnapshot): SnapshotRecord {
    return this.transaction((): SnapshotRecord => {
      const r = this.require(c.key);
      if (r.kind !== 'active')
        throw new FerryError('FAILED_PRECONDITION', `snapshot ${JSON.stringify(c.key)} is not active`);
      if (this.get(c.name) !== undefined)
        throw new FerryError('ALREADY_EXISTS', `snapshot ${JSON.stringify(c.name)}: already exists`);
      this.db
        .prepare(
          `UPDATE snapshots SET key = ?, kind = 'committed', created_ms = ?, updated_ms = ?, labels = ?, size_bytes = ?,
           inodes = ?, remote = ? WHERE id = ?`,
        )
        .run(
          c.name,
          c.nowMs,
          c.nowMs,
          JSON.stringify(c.labels),
          c.sizeBytes,
          c.inodes,
          c.remote ? 1 : 0,
          r.id,
        );
      return this.require(c.name);
    });
  }

  /** Deletes `key`; a snapshot with children is FAILED_PRECONDITION. */
  remove(key: string): SnapshotRecord {
    return this.transaction((): SnapshotRecord => {
      const r = this.require(key);
      if (this.hasChildren(r.id))
        throw new FerryError(
          'FAILED_PRECONDITION',
          `cannot remove snapshot ${JSON.stringify(key)}: has children`,
        );
      this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(r.id);
      return r;
    });
  }

  /** Gives snapshot `key` the name `to` (same id, parent and children). */
  rename(key: string, to: string, nowMs: number): SnapshotRecord {
    return this.transaction((): SnapshotRecord => {
      const r = this.require(key);
      if (this.get(to) !== undefined)
        throw new FerryError('ALREADY_EXISTS', `snapshot ${JSON.stringify(to)}: already exists`);
      this.db.prepare('UPDATE snapshots SET key = ?, updated_ms = ? WHERE id = ?').run(to, nowMs, r.id);
      return this.require(to);
    });
  }

  /** Records whether snapshot `id` has a materialised dir (no error when it was removed meanwhile). */
  setMaterialised(id: number, materialised: boolean): void {
    this.db.prepare('UPDATE snapshots SET materialised = ? WHERE id = ?').run(materialised ? 1 : 0, id);
  }

  /** Replaces the labels of `key` (the caller computes them from the field mask). */
  setLabels(key: string, labels: Readonly<Record<string, string>>, nowMs: number): SnapshotRecord {
    return this.transaction((): SnapshotRecord => {
      const r = this.require(key);
      this.db
        .prepare('UPDATE snapshots SET labels = ?, updated_ms = ? WHERE id = ?')
        .run(JSON.stringify(labels), nowMs, r.id);
      return this.require(key);
    });
  }

  /** Runs `fn` in one write transaction (for callers combining several steps atomically). */
  transaction<T>(fn: () => T): T {
    // Nested calls become savepoints, so a caller can combine several steps into one atomic write.
    if (this.db.isTransaction) {
      const name = `sp${++this.savepoints}`;
      this.db.exec(`SAVEPOINT ${name}`);
      try {
        const v = fn();
        this.db.exec(`RELEASE ${name}`);
        return v;
      } catch (e) {
        this.db.exec(`ROLLBACK TO ${name}`);
        this.db.exec(`RELEASE ${name}`);
        throw e;
      }
    }
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const v = fn();
      this.db.exec('COMMIT');
      return v;
    } catch (e) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  integrityCheck(): string {
    const row = this.db.prepare('PRAGMA integrity_check').get() as { integrity_check?: unknown } | undefined;
    return String(row?.integrity_check);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
