import { InvalidArgumentError } from 'commander';
import { resolveTargetName, TARGETS, type TargetId } from '../../core/formats/targets.ts';

/** commander argument parser for positive integers, with a one-line error. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`'${value}' is not a positive integer`);
  return n;
}

/** The finite number `value` spells, or undefined (`Number.parseFloat` would read 'abc' as NaN). */
function finiteNumber(value: string): number | undefined {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** Commander argument parser for a finite number. */
export function parseNumber(value: string): number {
  const n = finiteNumber(value);
  if (n === undefined) throw new InvalidArgumentError(`'${value}' is not a number`);
  return n;
}

/** Commander argument parser for a finite number >= 0 (points, seconds). */
export function parseNonNegative(value: string): number {
  const n = finiteNumber(value);
  if (n === undefined || n < 0) throw new InvalidArgumentError(`'${value}' is not a number >= 0`);
  return n;
}

/**
 * Commander argument parser for `--target` / `--hardware`: a target id, in any case and with
 * or without separators (`ascend_310` is ascend310).
 */
export function parseTarget(value: string): TargetId {
  const id = resolveTargetName(value);
  if (!id)
    throw new InvalidArgumentError(
      `unknown target '${value}' (known: ${Object.keys(TARGETS).join(', ')})`,
    );
  return id;
}

/** Commander argument parser for `--server`: an absolute http(s) URL. */
export function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`'${value}' is not a URL (for example http://127.0.0.1:8787)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`'${value}' is not an http or https URL`);
  return value;
}

/** Prints a command's result: one JSON object with --json, else the human text. */
export function printResult(json: boolean | undefined, result: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${human()}\n`);
}
