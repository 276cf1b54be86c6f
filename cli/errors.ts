/**
 * An error the user caused (bad option, unknown name, malformed file, unreachable server). The CLI
 * prints its message as one sentence and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
