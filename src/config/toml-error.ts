// A TOML syntax error as Ferry reports it: line, column and the parser's reason, never the text around it (the
// parser quotes the offending lines, and a config line may hold a password).
import { TomlError } from 'smol-toml';

/** smol-toml's fixed reasons; anything else (e.g. a date parser's message, which quotes the value) is dropped. */
const KNOWN_REASONS = new Set([
  'control characters are not allowed in comments',
  'control characters are not allowed in strings',
  'document contains an unsafe property',
  'document contains excessively nested structures. aborting.',
  'each key-value declaration must be followed by an end-of-line',
  'expected comma or end of structure',
  'expected end of table array declaration',
  'illegal character in key',
  'illegal character in numeric literal',
  'illegal empty bare key',
  'illegal leading zero',
  'illegal quoted key: multiline strings are not allowed',
  'illegal underscore',
  'incomplete key-value: cannot find end of key',
  'integer value cannot be represented losslessly',
  'invalid date',
  'invalid date-time: date part is malformed',
  'invalid date-time: time part is malformed',
  'invalid escape: only line-ending whitespace may be escaped',
  'invalid non-hex character in unicode escape',
  'invalid unicode escape',
  'invalid value',
  'trying to redefine an already defined table or value',
  'trying to redefine an already defined value',
  'unexpected end of key',
  'unfinished array',
  'unfinished numeric value',
  'unfinished string',
  'unfinished table',
  'unrecognised escape sequence',
]);

export function describeTomlError(e: unknown): string {
  if (!(e instanceof TomlError)) return 'syntax error';
  const reason = /^Invalid TOML document: ([^\n]*)/.exec(e.message)?.[1];
  const where = `line ${e.line}, column ${e.column}`;
  return reason !== undefined && KNOWN_REASONS.has(reason)
    ? `${reason} at ${where}`
    : `syntax error at ${where}`;
}
