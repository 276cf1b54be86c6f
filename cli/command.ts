/** One `robustsbi <name>` sub-command; each lives in cli/commands/<name>.ts as `export const command`. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. Throws UserError for mistakes the user can fix. */
  run(argv: string[]): Promise<number>;
}
