/**
 * The one error type CLI commands throw for problems the user can fix (bad flag, unknown
 * task, missing file). main.ts prints its message as one line and exits with `exitCode`.
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
