// The `robustsbi` command: dispatches to cli/commands/<name>.js by the first argument.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.js';
import { UserError } from './errors.js';

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
// Compiled, the commands are .js; run from source (node --import tsx cli/main.ts) they are .ts.
const ext = fileURLToPath(import.meta.url).endsWith('.ts') ? '.ts' : '.js';

function commandNames(): string[] {
  if (!existsSync(commandsDir)) return [];
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function load(name: string): Promise<Command | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  const mod = (await import(join(commandsDir, `${name}${ext}`))) as { command?: Command };
  return mod.command;
}

async function help(): Promise<string> {
  const lines = ['Usage: robustsbi <command> [options]', '', 'Commands:'];
  for (const name of commandNames()) {
    const c = await load(name);
    if (c) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  }
  lines.push('', 'Run "robustsbi <command> --help" for the options of one command.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name === undefined ? 2 : 0;
  }
  const cmd = await load(name);
  if (!cmd) throw new UserError(`Unknown command "${name}"; run "robustsbi --help" for the list.`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${cmd.summary}\n\nUsage: ${cmd.usage}`);
    return 0;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UserError) {
      console.error(`robustsbi: ${err.message}`);
      process.exitCode = err.exitCode;
    } else {
      const e = err as Error;
      console.error(`robustsbi: ${e?.message ?? String(err)}`);
      if (process.env.ROBUSTSBI_DEBUG) console.error(e?.stack);
      process.exitCode = 1;
    }
  },
);
