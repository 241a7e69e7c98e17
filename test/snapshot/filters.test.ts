// containerd filter grammar for List: presence, ==, !=, ~=, quoted label keys, AND within a string, OR across.
import { describe, expect, it } from 'vitest';
import { isFerryError } from '../../src/errors.js';
import { parseFilters } from '../../src/snapshot/filters.js';
import type { SnapshotInfo } from '../../src/snapshot/types.js';

const info = (
  name: string,
  parent: string,
  kind: SnapshotInfo['kind'],
  labels: Record<string, string> = {},
): SnapshotInfo => ({
  name,
  parent,
  kind,
  createdAtMs: 0,
  updatedAtMs: 0,
  labels,
});

const all = [
  info('sha256:aaa', '', 'committed', { 'containerd.io/snapshot.ref': 'sha256:aaa', team: 'a' }),
  info('sha256:bbb', 'sha256:aaa', 'committed', { 'containerd.io/snapshot.ref': 'sha256:bbb' }),
  info('default/3/c1', 'sha256:bbb', 'active', { team: 'b' }),
  info('default/4/v1', 'sha256:bbb', 'view'),
];
const names = (filters: string[]) => all.filter(parseFilters(filters)).map((i) => i.name);

describe('parseFilters', () => {
  it('matches everything with no filters', () => {
    expect(names([])).toHaveLength(4);
    expect(names([''])).toHaveLength(4);
  });

  it('answers containerd\'s remote-snapshot query, including parent=="" for a bottom layer', () => {
    expect(names(['labels."containerd.io/snapshot.ref"==sha256:aaa,parent==""'])).toEqual(['sha256:aaa']);
    expect(names(['labels."containerd.io/snapshot.ref"==sha256:bbb,parent=="sha256:aaa"'])).toEqual([
      'sha256:bbb',
    ]);
    expect(names(['labels."containerd.io/snapshot.ref"==sha256:bbb,parent==""'])).toEqual([]);
  });

  it('supports kind, presence, !=, regexp and OR', () => {
    expect(names(['kind==active'])).toEqual(['default/3/c1']);
    expect(names(['labels.team'])).toEqual(['sha256:aaa', 'default/3/c1']);
    expect(names(['labels.team!=a'])).toEqual(['default/3/c1']); // an absent label does not match !=
    expect(names(['name~=^default/'])).toEqual(['default/3/c1', 'default/4/v1']);
    expect(names(['name~=/^sha256:a+$/'])).toEqual(['sha256:aaa']);
    expect(names(['kind==view', 'labels.team==a'])).toEqual(['sha256:aaa', 'default/4/v1']);
    expect(names(['kind==committed,parent==sha256:aaa'])).toEqual(['sha256:bbb']);
  });

  it('rejects malformed filters with INVALID_ARGUMENT', () => {
    for (const bad of ['labels."open', 'kind=active', 'kind==', '==x', 'name~=(', 'kind==a,,']) {
      let code = 'ok';
      try {
        parseFilters([bad]);
      } catch (e) {
        code = isFerryError(e) ? e.code : 'other';
      }
      expect(code, bad).toBe('INVALID_ARGUMENT');
    }
  });
});
