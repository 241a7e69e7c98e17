// Argument parsers shared by the commands' option declarations.
import { InvalidArgumentError } from 'commander';

export function collectInt(v: string): number {
  const n = Number(v);
  // commander's own error type: it reports it as a usage error naming the option.
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
}
