import { Command } from 'commander';
import { TpWsError, isTpWsError } from '../errors.js';
import { addConfigOptions, loadConfigFromCommand, loadConfigWithOriginsFromCommand, registerConfigCommands } from './config-commands.js';
import { addTokenOptions } from './token.js';
import { registerDoctorCommand } from './doctor.js';
import { registerReplayCommand } from './replay.js';
import { registerStatusCommand } from './status.js';
import { VERSION } from '../version.js';

/**
 * A usage error of `cmd` (unknown option or command, an option without its
 * value, an extra argument) becomes a `TPWS_ERR_CONFIG_INVALID` naming it:
 * one line and exit 2, as for a bad flag value, instead of commander's
 * exit 1 and usage text (1 means something else to `status` and `replay`).
 */
function usageErrorsAsConfigErrors(cmd: Command): void {
  const name = cmd.parent === null ? 'tp-ws' : `tp-ws ${cmd.name()}`;
  cmd
    .showHelpAfterError(false)
    .configureOutput({ outputError: () => undefined })
    .exitOverride((err) => {
      // --help and --version (exit 0), and the help printed for a bare `tp-ws` (exit 1):
      // commander exits after this returns.
      if (err.exitCode === 0 || err.code === 'commander.help') return;
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see ${name} --help)`);
    });
}

/**
 * Builds the `tp-ws` program and runs it on `argv`. Errors with a tp-ws code
 * (usage errors included) are printed as one line (`TPWS_ERR_…: message`)
 * with exit code 2; anything else is a bug and prints its stack.
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('tp-ws')
    .description('Real-time event bridge for PHP applications (TeamPass-compatible WebSocket daemon)')
    .version(VERSION);

  addConfigOptions(program.command('serve').description('run the daemon (WebSocket gateway, ingest socket, table poller)'))
    .action(async (opts) => {
      // Each command loads its implementation when it runs: the daemon does not carry the others.
      const { runServe } = await import('./serve.js');
      return runServe(loadConfigWithOriginsFromCommand(opts), { reload: () => loadConfigWithOriginsFromCommand(opts) });
    });

  addConfigOptions(program.command('migrate').description('create or upgrade the schema of the store (idempotent)'))
    .option('--force', 'MySQL: create the tables even when the database holds TeamPass tables under another --table-prefix')
    .action(async (opts) => (await import('./migrate.js')).runMigrate(loadConfigFromCommand(opts), opts));

  addTokenOptions(addConfigOptions(program.command('token').description('print a JWT for a user, signed with the configured (or development) HS256 secret')))
    .action(async (opts) => (await import('./token.js')).runToken(loadConfigFromCommand(opts), opts));

  addTokenOptions(addConfigOptions(program.command('tail').description('connect as a client and print every message received')))
    .option('--url <url>', 'WebSocket URL (default: ws://<server.host>:<server.port>/ws)')
    .option('--token <token>', 'token to connect with (default: a JWT minted for --user)')
    .option('--folder <id...>', 'subscribe to these folders after connecting')
    .option('--kb', 'subscribe to the knowledge-base channel')
    .action(async (opts) => (await import('./tail.js')).runTail(loadConfigFromCommand(opts), opts));

  registerConfigCommands(program);
  registerDoctorCommand(program);
  registerReplayCommand(program);
  registerStatusCommand(program);
  for (const cmd of [program, ...program.commands]) usageErrorsAsConfigErrors(cmd);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (isTpWsError(err)) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
