import { InvalidArgumentError } from 'commander';

/** commander argument parser for positive integers, with a one-line error. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`'${value}' is not a positive integer`);
  return n;
}

/** Prints a command's result: one JSON object with --json, else the human text. */
export function printResult(json: boolean | undefined, result: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${human()}\n`);
}
