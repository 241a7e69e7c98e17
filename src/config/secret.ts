// Shared secrets (the P2P cluster secret, the hint API's bearer token): what is strong enough, and reading one
// from a file. Placeholders shipped in examples and short or patterned values are refused; no message ever
// contains the value itself.
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, NotFoundError } from '../errors.js';

export const MIN_SECRET_BYTES = 32;

export const SECRET_HINT = `at least ${MIN_SECRET_BYTES} bytes of random data, e.g. \`head -c 32 /dev/urandom | base64\``;

/** Words of example and template secrets (compared lower-case, letters and digits only). */
const PLACEHOLDER_WORDS = [
  'changeme',
  'replaceme',
  'placeholder',
  'example',
  'secret',
  'password',
  'token',
  'insert',
  'random',
];

/** Why `value` (already trimmed) is not an acceptable secret, or undefined when it is. Never echoes the value. */
export function secretProblem(value: string): string | undefined {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < MIN_SECRET_BYTES) return `it is ${bytes} bytes long`;
  const letters = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (PLACEHOLDER_WORDS.some((w) => letters.includes(w))) return 'it looks like a placeholder';
  if (/^(.{1,16}?)\1+.{0,16}$/su.test(value)) return 'it is a repeated pattern';
  if (new Set(value).size < 10) return 'it uses fewer than 10 distinct characters';
  // Runs like "aaaa", "abcd" or "4321": random text has few neighbours that differ by at most one.
  let close = 0;
  for (let i = 1; i < value.length; i++)
    if (Math.abs(value.charCodeAt(i) - value.charCodeAt(i - 1)) <= 1) close++;
  if (close * 2 > value.length) return 'it is mostly a run of neighbouring characters';
  return undefined;
}

/** The trimmed secret, or INVALID_ARGUMENT naming `what` (a config key) and what is required. */
export function checkSecret(value: string, what: string): string {
  const trimmed = value.trim();
  const problem = secretProblem(trimmed);
  if (problem !== undefined)
    throw new InvalidArgumentError(`${what}: the secret is refused (${problem}); use ${SECRET_HINT}`);
  return trimmed;
}

/** Reads a secret file (surrounding whitespace dropped) and checks it. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new NotFoundError(`${what}: cannot read ${path} (${code})`);
  }
  return checkSecret(text, `${what} (${path})`);
}
