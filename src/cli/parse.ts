/** Option value parsers for commander: bad values become one-line errors naming the option. */
import { InvalidArgumentError } from 'commander';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'.`);
  return n;
}

export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'.`);
  return n;
}

/** A decimal number as written by people (`0.01`, `1e-5`, `.5`): not hexadecimal, binary or octal (`0x10` is not 16). */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function decimal(v: string): number {
  return DECIMAL.test(v) ? Number(v) : NaN;
}

export function positiveNumber(v: string): number {
  const n = decimal(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number in decimal (such as 0.01 or 1e-3), got '${v}'.`);
  return n;
}

export function nonNegativeNumber(v: string): number {
  const n = decimal(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number in decimal (such as 0 or 1e-5), got '${v}'.`);
  return n;
}

/** SGD momentum: from 0 up to (not including) 1 (steps grow as 1 / (1 - momentum)). */
export function momentum(v: string): number {
  const n = decimal(v);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a number from 0 up to (not including) 1 (SGD's steps grow as 1 / (1 - momentum), without bound at 1), got '${v}'.`);
  return n;
}

/** A TCP port: 0 (any free one) to 65535. */
export function port(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n > 65535) throw new InvalidArgumentError(`expected a port from 0 to 65535 (0 picks a free one), got '${v}'.`);
  return n;
}

export function oneOf<T extends string>(choices: readonly T[]): (v: string) => T {
  return (v: string) => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got '${v}'.`);
    return v as T;
  };
}

export function list(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** `I/N` with 1 <= I <= N. */
export function shard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`expected I/N with 1 <= I <= N (for example 2/8), got '${v}'.`);
  return { index, count };
}
