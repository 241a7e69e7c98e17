// containerd's filter grammar (filters/parser.go) for List: `<fieldpath>[<op><value>]`, ',' = AND, several
// filter strings = OR; fields name, parent, kind, labels.<key> (adaptSnapshot in metadata/adaptors.go).
import { InvalidArgumentError } from '../errors.js';
import type { SnapshotInfo } from './types.js';

type Operator = 'present' | '==' | '!=' | '~=';

interface Selector {
  readonly fieldpath: readonly string[];
  readonly op: Operator;
  readonly value: string;
  readonly re?: RegExp;
}

export type SnapshotFilter = (info: SnapshotInfo) => boolean;

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parse(): Selector[] {
    const out = [this.selector()];
    while (this.pos < this.s.length) {
      this.skipSpace();
      if (this.s[this.pos] !== ',') this.fail('expected a separator');
      this.pos++;
      out.push(this.selector());
    }
    return out;
  }

  private selector(): Selector {
    const fieldpath = [this.field()];
    while (this.s[this.pos] === '.') {
      this.pos++;
      fieldpath.push(this.field());
    }
    this.skipSpace();
    if (this.pos >= this.s.length || this.s[this.pos] === ',') return { fieldpath, op: 'present', value: '' };
    const op = this.s.slice(this.pos, this.pos + 2);
    if (op !== '==' && op !== '!=' && op !== '~=') this.fail('expected an operator ("=="|"!="|"~=")');
    this.pos += 2;
    this.skipSpace();
    const value = this.value(op === '~=');
    if (op !== '~=') return { fieldpath, op, value };
    try {
      return { fieldpath, op, value, re: new RegExp(value) };
    } catch (e) {
      return this.fail(`bad regular expression ${JSON.stringify(value)}: ${String(e)}`);
    }
  }

  private field(): string {
    this.skipSpace();
    const c = this.s[this.pos];
    if (c === '"' || c === "'") return this.quoted(false);
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.pos));
    if (m === null) return this.fail('expected field or quoted');
    this.pos += m[0].length;
    return m[0];
  }

  private value(allowAltQuotes: boolean): string {
    const c = this.s[this.pos];
    if (c === '"' || c === "'" || (allowAltQuotes && (c === '/' || c === '|')))
      return this.quoted(allowAltQuotes);
    const m = /^[^\s,]+/.exec(this.s.slice(this.pos));
    if (m === null) return this.fail('expected value or quoted');
    this.pos += m[0].length;
    return m[0];
  }

  /** Go-style quoted string; `/re/` and `|re|` (regexp values only) take no escapes but the delimiter. */
  private quoted(allowAlts: boolean): string {
    const q = this.s[this.pos]!;
    let i = this.pos + 1;
    let raw = '';
    for (; i < this.s.length && this.s[i] !== q; i++) {
      if (this.s[i] === '\\' && i + 1 < this.s.length) raw += this.s.charAt(i++);
      raw += this.s.charAt(i);
    }
    if (i >= this.s.length) this.fail('quoted literal not terminated');
    this.pos = i + 1;
    if (q === '"') {
      try {
        return JSON.parse(`"${raw}"`) as string;
      } catch {
        return this.fail('invalid quoted string');
      }
    }
    if (!allowAlts && q !== "'") this.fail('invalid quote encountered');
    return raw.replace(new RegExp(`\\\\([\\\\${q === '|' ? '|' : q}])`, 'g'), '$1');
  }

  private skipSpace(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
  }

  private fail(message: string): never {
    throw new InvalidArgumentError(`filters: parse error: [${this.s} >|${this.pos}|<]: ${message}`);
  }
}

function field(info: SnapshotInfo, path: readonly string[]): string | undefined {
  const [head, ...rest] = path;
  switch (head) {
    case 'kind':
      return path.length === 1 ? info.kind : undefined;
    // Always present, even when empty: containerd's remote-snapshot query for a bottom layer is `parent==""`.
    case 'name':
      return path.length === 1 ? info.name : undefined;
    case 'parent':
      return path.length === 1 ? info.parent : undefined;
    case 'labels':
      return rest.length === 0 ? undefined : info.labels[rest.join('.')];
    default:
      return undefined;
  }
}

function matches(sel: Selector, info: SnapshotInfo): boolean {
  const v = field(info, sel.fieldpath);
  if (v === undefined) return false;
  switch (sel.op) {
    case 'present':
      return true;
    case '==':
      return v === sel.value;
    case '!=':
      return v !== sel.value;
    case '~=':
      return sel.re?.test(v) ?? false;
  }
}

/** One filter from many strings (OR of ANDs); an empty list or empty strings match everything. */
export function parseFilters(filters: readonly string[]): SnapshotFilter {
  if (filters.length === 0) return () => true;
  const alternatives = filters.map((f) => (f === '' ? [] : new Parser(f).parse()));
  return (info) => alternatives.some((all) => all.every((sel) => matches(sel, info)));
}
