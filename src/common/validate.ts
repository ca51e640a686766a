/** Validation of every value that reaches a node command or the database. Pure. */
import { InvalidTaskIdError, UserError } from './errors';

export const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const BOOT_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isValidTaskId(id: unknown): id is string {
  return typeof id === 'string' && TASK_ID_RE.test(id);
}

export function assertTaskId(id: unknown): string {
  if (!isValidTaskId(id)) throw new InvalidTaskIdError(id);
  return id;
}

export function assertNodeName(name: unknown): string {
  if (typeof name !== 'string' || !NODE_NAME_RE.test(name)) {
    throw new UserError(`invalid node name ${JSON.stringify(name)}: names must match ${NODE_NAME_RE.source}`);
  }
  return name;
}

/** A pid we may ever signal: an integer > 1 (never 0, 1 or a negative group id). */
export function isSignallablePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1 && pid < 4_194_305;
}

/** Parses a pid from junk (legacy rows, status.json); null when it is not a signallable pid. */
export function parsePid(value: unknown): number | null {
  if (typeof value === 'number') return isSignallablePid(value) ? value : null;
  if (typeof value === 'string' && /^[0-9]{1,7}$/.test(value.trim())) {
    const n = Number(value.trim());
    return isSignallablePid(n) ? n : null;
  }
  return null;
}

/** Process start time in clock ticks since boot (/proc/<pid>/stat field 22): digits only. */
export function isStartTime(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9]{1,20}$/.test(value);
}

/**
 * The token that proves an attempt directory belongs to this attempt of this task's life: minted
 * when the row is dispatched, kept in the row, written by the launch into the directory.
 */
export const ATTEMPT_TOKEN_RE = /^[0-9a-f]{32}$/;

export function isAttemptToken(value: unknown): value is string {
  return typeof value === 'string' && ATTEMPT_TOKEN_RE.test(value);
}

/**
 * How the books name an attempt that is current: "task#attempt#token", or "task#attempt" for an
 * attempt dispatched before tokens existed. A process or directory is current only when its own
 * key (from its environment or its token file) is in the set: an earlier life never matches.
 */
export function attemptKey(taskId: string, attempt: number, token: string | null | undefined): string {
  return token ? `${taskId}#${attempt}#${token}` : `${taskId}#${attempt}`;
}

export function isBootId(value: unknown): value is string {
  return typeof value === 'string' && BOOT_ID_RE.test(value);
}

/** Paths that go into node commands: absolute or relative, no NUL, no newline, no leading dash. */
export function assertSafePath(p: unknown, what: string): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 1024 || /[\0\n\r]/.test(p) || p.startsWith('-')) {
    throw new UserError(`invalid ${what} ${JSON.stringify(p)}`);
  }
  return p;
}

/** HOST:PORT for the exporter to bind, e.g. 127.0.0.1:9464 or 0.0.0.0:9464. */
export function isMetricsAddress(v: string): boolean {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(v);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}
