// What `ferry config show` may print: a copy of the effective config with every secret-like value replaced, so
// its output can be pasted into an issue or a chat.
export const REDACTED = '[redacted]';

/** Keys whose string values are secrets (matched anywhere in the key, any case). */
const SECRET_KEY = /secret|passw|token|credential|private|apikey|api_key/i;
/** …unless the key names where the secret lives, not the secret (`clusterSecretFile`, `hintTokenFile`). */
const LOCATION_KEY = /(file|files|path|dir|socket)$/i;

/** `scheme://user:password@host…`: the password part of a URL's userinfo. */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*:)[^/@\s]*@/i;

function redactValue(value: unknown, secret: boolean): unknown {
  if (typeof value === 'string') return secret ? REDACTED : value.replace(URL_PASSWORD, `$1${REDACTED}@`);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secret));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // A secret table (`credentials`) keeps its structure: only its secret-like leaves go.
      const leafSecret = SECRET_KEY.test(k) && !LOCATION_KEY.test(k);
      out[k] =
        leafSecret && typeof v === 'object' && v !== null && !Array.isArray(v)
          ? redactValue(v, false)
          : redactValue(v, leafSecret && !isTableList(v));
    }
    return out;
  }
  return value;
}

/** `credentials = [{ host, username, password }]`: a list of tables, redacted field by field. */
function isTableList(v: unknown): boolean {
  return Array.isArray(v) && v.some((e) => e !== null && typeof e === 'object');
}

/** A deep copy of `config` without secrets: values under secret-like keys and passwords in URLs. */
export function redactConfig(config: object): Record<string, unknown> {
  return redactValue(JSON.parse(JSON.stringify(config)) as unknown, false) as Record<string, unknown>;
}
