/** The `dispatch` command line. User mistakes exit 2 with one line on stderr, no stack. */
import { Command, CommanderError } from 'commander';
import { NodeUnreachableError, UserError } from '../common/errors';
import { registerCancel } from './commands/cancel';
import { registerDev } from './commands/dev';
import { registerInit } from './commands/init';
import { registerNodes } from './commands/nodes';
import { registerLogs } from './commands/logs';
import { registerReap } from './commands/reap';
import { registerBackup } from './commands/backup';
import { registerRetry } from './commands/retry';
import { registerSchedules } from './commands/schedules';
import { registerShow } from './commands/show';
import { registerSubmit } from './commands/submit';
import { registerTasks } from './commands/tasks';
import { registerWorker } from './commands/worker';
import { makeCtx, type Ctx, type GlobalOptions, type Run } from './context';
import { EXIT, exitCodeFor } from './exit';

export { EXIT, exitCodeFor } from './exit';

export function buildProgram(run: Run): Command {
  const program = new Command('dispatch')
    .description('Run tasks on SSH nodes as Temporal workflows; heartbeats instead of leases, and no ghosts.')
    .option('--db <path>', 'SQLite database (env DISPATCH_DB)', undefined)
    .option('--config <path>', 'config file (default ./dispatch.config.json if present)')
    .option('--address <host:port>', 'Temporal frontend (env TEMPORAL_ADDRESS, default localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (env TEMPORAL_NAMESPACE, default "default")')
    .option('--profile <name>', 'temporal.toml profile, as the temporal CLI reads it (env TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE)')
    .showHelpAfterError()
    .exitOverride();
  // Registration order is the order `dispatch --help` lists the commands in.
  const groups = [
    registerInit,
    registerNodes,
    registerSubmit,
    registerTasks,
    registerShow,
    registerLogs,
    registerCancel,
    registerRetry,
    registerWorker,
    registerDev,
    registerReap,
    registerSchedules,
    registerBackup,
  ];
  for (const register of groups) register(program, run);
  return program;
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  let ctx: Ctx | null = null;
  const program = buildProgram(async (fn) => {
    ctx = makeCtx(program.opts<GlobalOptions>());
    ctx.config(); // a broken config is refused at start, whatever the command
    const r = await fn(ctx);
    if (typeof r === 'number') code = r;
  });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    // Commander has already printed its message (or the help).
    if (!(e instanceof CommanderError)) {
      console.error(
        `dispatch: ${e instanceof UserError || e instanceof NodeUnreachableError ? e.message : ((e as Error | undefined)?.stack ?? String(e))}`,
      );
    }
    code = exitCodeFor(e);
  } finally {
    await (ctx as Ctx | null)?.close();
  }
  return code;
}
