/**
 * Task specs: markdown with YAML front matter (the seeds' format), or submit flags. Both end up as
 * a validated TaskSpec. Pure apart from the sha256 used for the resubmission check.
 */
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { parseDurationSeconds } from '../common/duration';
import { SpecError } from '../common/errors';
import type { TaskSpec } from '../common/types';
import { TASK_ID_RE, NODE_NAME_RE } from '../common/validate';

export const DEFAULT_PRIORITY = 50;
export const DEFAULT_PROJECT = 'default';
const MAX_COMMAND = 64 * 1024;
const MAX_SPEC = 1024 * 1024;

/** JSON for error messages that never throws (YAML aliases can make circular values). */
function show(v: unknown): string {
  try {
    const j = JSON.stringify(v);
    return j === undefined ? String(v) : j.length > 200 ? `${j.slice(0, 200)}...` : j;
  } catch {
    return '(an unprintable value)';
  }
}

const FRONT_MATTER_KEYS = [
  'task_id',
  'project',
  'priority',
  'depends_on',
  'modifies',
  'executor',
  'estimated_minutes',
  'command',
  'max_runtime',
  'node',
] as const;

export interface SpecDefaults {
  maxRuntimeS: number;
  executors: Record<string, string>;
}

function list(source: string, key: string, v: unknown, check?: (s: string) => boolean): string[] {
  if (v === undefined || v === null) return [];
  const arr =
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v;
  if (!Array.isArray(arr)) throw new SpecError(source, `${key} must be a list of strings`);
  const out: string[] = [];
  for (const x of arr) {
    if (typeof x !== 'string' || x.trim() === '' || /[\0\n\r]/.test(x) || x.length > 1024) {
      throw new SpecError(source, `${key} contains an invalid entry ${show(x)}`);
    }
    if (check && !check(x.trim())) throw new SpecError(source, `${key} entry ${show(x)} is not a valid task id`);
    out.push(x.trim());
  }
  return [...new Set(out)];
}

function int(source: string, key: string, v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  const n = typeof v === 'string' && /^-?[0-9]+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < -1_000_000 || n > 1_000_000) {
    throw new SpecError(source, `${key} must be an integer, got ${show(v)}`);
  }
  return n;
}

/** The command an executor runs: `{spec}` becomes the quoted spec path on the node. */
export function expandExecutor(template: string): string {
  const withSpec = template.includes('{spec}') ? template : `${template} {spec}`;
  return withSpec.split('{spec}').join('"$DISPATCH_SPEC"').split('{task_id}').join('"$DISPATCH_TASK"');
}

export interface RawTask {
  task_id?: unknown;
  project?: unknown;
  priority?: unknown;
  depends_on?: unknown;
  modifies?: unknown;
  executor?: unknown;
  estimated_minutes?: unknown;
  command?: unknown;
  max_runtime?: unknown;
  node?: unknown;
}

/** Validates raw fields from front matter or flags into a TaskSpec. */
export function buildTaskSpec(raw: RawTask, specBody: string | null, defaults: SpecDefaults, source: string): TaskSpec {
  const id = raw.task_id;
  if (typeof id !== 'string' || !TASK_ID_RE.test(id)) {
    throw new SpecError(source, `task id ${show(id ?? null)} is not allowed: ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`);
  }
  const project = raw.project ?? DEFAULT_PROJECT;
  if (typeof project !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(project)) {
    throw new SpecError(source, `project ${show(project)} must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`);
  }
  const dependsOn = list(source, 'depends_on', raw.depends_on, (s) => TASK_ID_RE.test(s));
  if (dependsOn.includes(id)) throw new SpecError(source, `task ${id} cannot depend on itself`);
  const modifies = list(source, 'modifies', raw.modifies);
  let executor: string | null = null;
  let command: string;
  if (raw.command !== undefined && raw.command !== null) {
    if (typeof raw.command !== 'string' || raw.command.trim() === '')
      throw new SpecError(source, 'command must be a non-empty string (quote it in YAML: command: "true")');
    command = raw.command;
  } else if (raw.executor !== undefined && raw.executor !== null) {
    if (typeof raw.executor !== 'string') throw new SpecError(source, 'executor must be a string');
    const tpl = Object.hasOwn(defaults.executors, raw.executor) ? defaults.executors[raw.executor] : undefined;
    if (typeof tpl !== 'string') {
      const known = Object.keys(defaults.executors);
      throw new SpecError(
        source,
        `executor ${show(raw.executor)} is not configured (configured: ${known.length ? known.join(', ') : 'none; add "executors" to dispatch.config.json'})`,
      );
    }
    executor = raw.executor;
    command = expandExecutor(tpl);
  } else {
    throw new SpecError(source, 'no command: give --command, or an executor (front matter `executor:`) that the config maps to a command');
  }
  if (command.includes('\0') || command.length > MAX_COMMAND) throw new SpecError(source, 'command contains a NUL byte or is too long');
  let estimatedMinutes: number | null = null;
  if (raw.estimated_minutes !== undefined && raw.estimated_minutes !== null) {
    const e = raw.estimated_minutes;
    if (typeof e !== 'number' || !Number.isFinite(e) || e < 0) throw new SpecError(source, `estimated_minutes must be a number >= 0`);
    estimatedMinutes = e;
  }
  let maxRuntimeS = defaults.maxRuntimeS;
  if (raw.max_runtime !== undefined && raw.max_runtime !== null) {
    try {
      maxRuntimeS = parseDurationSeconds(raw.max_runtime, 'max_runtime');
    } catch (e) {
      throw new SpecError(source, (e as Error).message);
    }
  }
  let node: string | null = null;
  if (raw.node !== undefined && raw.node !== null) {
    if (typeof raw.node !== 'string' || !NODE_NAME_RE.test(raw.node))
      throw new SpecError(source, `node ${show(raw.node)} is not a valid node name`);
    node = raw.node;
  }
  if (specBody !== null && specBody.length > MAX_SPEC) throw new SpecError(source, 'spec file is larger than 1 MiB');
  return {
    id,
    project,
    priority: int(source, 'priority', raw.priority, DEFAULT_PRIORITY),
    dependsOn,
    modifies,
    command,
    specBody,
    executor,
    estimatedMinutes,
    maxRuntimeS: Math.max(1, Math.ceil(maxRuntimeS)),
    node,
  };
}

/** Parses a markdown spec with YAML front matter. The whole file is what gets copied to the node. */
export function parseSpecText(text: string, source: string, defaults: SpecDefaults): TaskSpec {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(\r?\n|$)/.exec(text);
  if (!m) throw new SpecError(source, 'no YAML front matter: the file must start with a line "---", the fields, and a closing "---"');
  let fm: unknown;
  try {
    fm = parseYaml(m[1]!, { maxAliasCount: 10 });
  } catch (e) {
    throw new SpecError(source, `front matter is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof fm !== 'object' || fm === null || Array.isArray(fm)) throw new SpecError(source, 'front matter must be a YAML mapping');
  for (const k of Object.keys(fm)) {
    if (!(FRONT_MATTER_KEYS as readonly string[]).includes(k)) {
      throw new SpecError(source, `unknown front matter key ${show(k)} (known: ${FRONT_MATTER_KEYS.join(', ')})`);
    }
  }
  return buildTaskSpec(fm as RawTask, text, defaults, source);
}

/** Canonical hash of what makes a task "the same task" for resubmission. */
export function specHash(spec: TaskSpec): string {
  const canonical = JSON.stringify([
    spec.id,
    spec.project,
    spec.priority,
    spec.dependsOn,
    spec.modifies,
    spec.command,
    spec.specBody,
    spec.executor,
    spec.maxRuntimeS,
    spec.node,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
