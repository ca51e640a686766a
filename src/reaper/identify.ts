/** Deciding whether a legacy row's process is really that task's. Pure. */
import { isStartTime, isValidTaskId, parsePid } from '../common/validate';

export interface IdentLine {
  pid: number;
  gone: boolean;
  state?: string;
  starttime?: string;
  cmdline?: string;
  envTask?: string | null;
}

export function parseIdentify(out: string): IdentLine[] {
  const res: IdentLine[] = [];
  for (const line of out.split('\n')) {
    const p = line.trim().split(' ');
    if (p[0] !== 'ident') continue;
    const pid = parsePid(p[1]);
    if (pid === null) continue;
    if (p[2] === 'gone') {
      res.push({ pid, gone: true });
      continue;
    }
    if (p.length !== 6 || !isStartTime(p[3])) continue;
    const cmdline = p[4] === '-' ? '' : Buffer.from(p[4]!, 'base64').toString('utf8');
    res.push({ pid, gone: p[2] === 'Z', state: p[2], starttime: p[3], cmdline, envTask: p[5] === '-' ? null : p[5] });
  }
  return res;
}

/**
 * A process names the task if DISPATCH_TASK equals the id, or one of its arguments contains the
 * id bounded by characters that cannot be part of an id (so S1 never matches S12).
 */
export function processNamesTask(ident: IdentLine, taskId: string): boolean {
  if (!isValidTaskId(taskId)) return false;
  if (ident.envTask === taskId) return true;
  const args = (ident.cmdline ?? '').split('\0');
  const esc = taskId.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  // Id characters include '.', so "S1" never matches "S1.retry"; a spec file "S1.md" still names S1.
  const re = new RegExp(`(^|[^A-Za-z0-9._-])${esc}(\\.md)?($|[^A-Za-z0-9._-])`);
  return args.some((a) => re.test(a));
}
