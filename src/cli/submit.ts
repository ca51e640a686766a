/** dispatch submit: flags or spec files -> validated task specs (started by src/client/tasks.ts). */
import { readFileSync } from 'node:fs';
import { parseDurationSeconds } from '../common/duration';
import { SpecError, UserError } from '../common/errors';
import type { TaskSpec } from '../common/types';
import type { DispatchConfig } from '../config/config';
import { buildTaskSpec, parseSpecText, type SpecDefaults } from '../spec/spec';

export interface SubmitFlags {
  id?: string;
  command?: string;
  project?: string;
  priority?: string;
  dependsOn?: string;
  modifies?: string;
  maxRuntime?: string;
  node?: string;
}

export function specDefaults(cfg: DispatchConfig): SpecDefaults {
  return { maxRuntimeS: cfg.max_runtime, executors: cfg.executors };
}

export function specsFromArgs(files: string[], flags: SubmitFlags, cfg: DispatchConfig): TaskSpec[] {
  const defaults = specDefaults(cfg);
  if (files.length > 0) {
    if (flags.id || flags.command) throw new UserError('give either spec files or --id/--command, not both');
    return files.map((f) => {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        throw new SpecError(f, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      return parseSpecText(text, f, defaults);
    });
  }
  if (!flags.id || !flags.command)
    throw new UserError('submit needs --id and --command, or one or more spec files (see dispatch submit --help)');
  if (flags.maxRuntime !== undefined) parseDurationSeconds(flags.maxRuntime, '--max-runtime');
  return [
    buildTaskSpec(
      {
        task_id: flags.id,
        command: flags.command,
        project: flags.project,
        priority: flags.priority,
        depends_on: flags.dependsOn,
        modifies: flags.modifies,
        max_runtime: flags.maxRuntime,
        node: flags.node,
      },
      null,
      defaults,
      '--id ' + flags.id,
    ),
  ];
}
