/** Parsing what node scripts print. Junk never becomes a pid we would signal. Pure. */
import { isAttemptToken, isBootId, isStartTime, parsePid } from '../common/validate';

export interface WrapperStatus {
  pid: number;
  starttime: string;
  bootId: string;
  state: 'running' | 'exited';
  exitCode: number | null;
  startedAt: number | null;
  /** The attempt token the wrapper was started with; null for wrappers from before tokens. */
  token: string | null;
  /** Set when the attempt's watchdog fenced it (epoch seconds, the node's clock). */
  fencedAt: number | null;
}

/** Parses status.json as the wrapper writes it; null (never a throw) for anything malformed. */
export function parseWrapperStatus(text: string): WrapperStatus | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const r = o as Record<string, unknown>;
  const pid = parsePid(r.pid);
  if (pid === null || !isStartTime(r.starttime) || !isBootId(r.boot_id)) return null;
  // The runner is started with setsid: its pid must lead its own session, or the group kill is unsafe.
  if (r.sid !== undefined && r.sid !== r.pid) return null;
  const state = r.state === 'exited' ? 'exited' : r.state === 'running' ? 'running' : null;
  if (!state) return null;
  let exitCode: number | null = null;
  if (state === 'exited') {
    if (typeof r.exit_code !== 'number' || !Number.isInteger(r.exit_code) || r.exit_code < 0 || r.exit_code > 255) return null;
    exitCode = r.exit_code;
  }
  const token = isAttemptToken(r.token) ? r.token : null;
  return {
    pid,
    starttime: r.starttime,
    bootId: r.boot_id,
    state,
    exitCode,
    startedAt: typeof r.started_at === 'number' ? r.started_at : null,
    token,
    fencedAt: typeof r.fenced_at === 'number' && Number.isSafeInteger(r.fenced_at) ? r.fenced_at : null,
  };
}

/** `key=value` lines -> map; a `status=` line keeps everything after the first '='. */
export function parseKv(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1));
  }
  return m;
}

export type ProbeVerdict =
  /** leaseRefreshed: the probe renewed the attempt's lease, so its watchdog will not fence it yet. */
  | {
      state: 'running';
      leaseRefreshed?: boolean;
      /** In a slice's result: how long after sending it the supervising worker may still refresh (refresh.ts). */
      refreshLeftMs?: number | null;
    }
  /** fencedAt: the attempt's watchdog stopped it (epoch seconds, the node's clock). */
  | { state: 'exited'; exitCode: number; fencedAt?: number }
  | { state: 'vanished'; detail: string };

/** Decides from a probe's output. Exit code recorded wins; otherwise alive or vanished. */
export function decideProbe(out: string): ProbeVerdict {
  const kv = parseKv(out);
  const st = kv.has('status') ? parseWrapperStatus(kv.get('status')!) : null;
  if (st?.state === 'exited' && st.exitCode !== null)
    return st.fencedAt !== null
      ? { state: 'exited', exitCode: st.exitCode, fencedAt: st.fencedAt }
      : { state: 'exited', exitCode: st.exitCode };
  if (kv.get('boot') === 'changed') return { state: 'vanished', detail: 'node rebooted' };
  if (kv.get('alive') === '1')
    return kv.has('lease') ? { state: 'running', leaseRefreshed: kv.get('lease') === '1' } : { state: 'running' };
  if (kv.get('alive') === '0') return { state: 'vanished', detail: 'process is gone and recorded no exit code (killed or crashed)' };
  throw new Error(`unexpected probe output: ${out.slice(0, 200)}`);
}

export interface KillReport {
  pid: number;
  outcome: 'not-ours' | 'not-ours-at-kill' | 'already-gone' | 'killed-term' | 'killed-kill' | 'still-alive' | 'rebooted';
}

export function parseKillOutput(out: string): KillReport[] {
  const res: KillReport[] = [];
  for (const line of out.split('\n')) {
    const m = /^result ([0-9]+) (not-ours|not-ours-at-kill|already-gone|killed-term|killed-kill|still-alive|rebooted)$/.exec(line.trim());
    const pid = m ? parsePid(m[1]) : null;
    if (m && pid !== null) res.push({ pid, outcome: m[2] as KillReport['outcome'] });
  }
  return res;
}
