/**
 * Coalesces the probes of all tasks on one node into one command. Supervising activities probe on
 * aligned ticks, so a node with a hundred running tasks costs one SSH session per tick, not a
 * hundred (the benchmark showed per-task probes overloading sshd at a few hundred tasks).
 */
import type { NodeRow, ProcessIdentity } from '../common/types';
import { isBootId } from '../common/validate';
import { nodeRefreshLimitS, UptimeSamples } from './uptime';
import type { ShellPool } from './pool';
import { probeManyCommand } from './scripts';
import { decideProbe, type ProbeVerdict } from './status';

interface Pending {
  id: ProcessIdentity;
  /** When (this worker's monotonic ms) the acknowledged request was sent and the refresh deadline; null: none. */
  refreshWindow: () => { ackSentMs: number; deadlineMs: number } | null;
  resolve: (v: ProbeVerdict) => void;
  reject: (e: Error) => void;
}

const CHUNK = 200;

/** The script's first line, "node boot=<id> up=<s>": the node's boot and uptime when it ran. */
export function parseProbeNode(out: string): { bootId: string; uptimeS: number } | null {
  const m = /^node boot=(\S+) up=([0-9]{1,12})$/m.exec(out);
  if (!m || !isBootId(m[1])) return null;
  return { bootId: m[1], uptimeS: Number(m[2]) };
}

/** "probe <pid> <start> boot=.. alive=.. [lease=..] status=.." lines -> verdict per "pid:start". */
export function parseProbeMany(out: string): Map<string, ProbeVerdict> {
  const res = new Map<string, ProbeVerdict>();
  for (const line of out.split('\n')) {
    const m = /^probe ([0-9]+) ([0-9]+) boot=(same|changed) alive=([01])(?: lease=([01]))? status=(.*)$/.exec(line);
    if (!m) continue;
    const kv = `boot=${m[3]}\nalive=${m[4]}\n${m[5] ? `lease=${m[5]}\n` : ''}${m[6] === '-' ? '' : `status=${m[6]}`}`;
    res.set(`${m[1]}:${m[2]}`, decideProbe(kv));
  }
  return res;
}

export class ProbeBatcher {
  private queues = new Map<string, { node: NodeRow; items: Pending[] }>();
  /** Per node and boot: samples of (node uptime ms - this worker's monotonic ms), a lower bound each. */
  private readonly uptimes = new Map<string, UptimeSamples>();
  sessions = 0;

  constructor(
    private readonly pool: ShellPool,
    private readonly windowMs = 100,
    private readonly timeoutMs = 30_000,
    private readonly now: () => number = () => performance.now(),
    /** How long uptime samples are kept: longer than outage_tolerance. */
    private readonly retainMs = 2 * 3600_000,
  ) {}

  /**
   * Probes one attempt with the rest of its node's. `refreshWindow` is asked when the command is
   * built: the lease is refreshed only before its deadline (this worker's monotonic clock), and the
   * node itself refuses a refresh that arrives later (probe-many.sh, UNTIL), by an uptime sample
   * received no later than the acknowledged request was sent (src/shell/uptime.ts).
   */
  probe(
    node: NodeRow,
    id: ProcessIdentity,
    refreshWindow: () => { ackSentMs: number; deadlineMs: number } | null = () => null,
  ): Promise<ProbeVerdict> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(node.name);
      if (!q) {
        q = { node, items: [] };
        this.queues.set(node.name, q);
        setTimeout(() => void this.flush(node.name), this.windowMs);
      }
      q.node = node;
      q.items.push({ id, refreshWindow, resolve, reject });
    });
  }

  private async flush(name: string): Promise<void> {
    const q = this.queues.get(name);
    this.queues.delete(name);
    if (!q) return;
    for (let i = 0; i < q.items.length; i += CHUNK) {
      const chunk = q.items.slice(i, i + CHUNK);
      try {
        this.sessions++;
        const now = this.now();
        const cmd = probeManyCommand(
          chunk.map((p) => {
            const w = p.refreshWindow();
            if (w === null || !(now < w.deadlineMs)) return { ...p.id, refreshUntilS: 0 };
            const offset = this.uptimes.get(`${name}\n${p.id.bootId}`)?.before(w.ackSentMs) ?? null;
            return { ...p.id, refreshUntilS: nodeRefreshLimitS(w.deadlineMs, offset) };
          }),
        );
        const r = await this.pool.get(q.node).exec(cmd, { timeoutMs: this.timeoutMs });
        const up = parseProbeNode(r.stdout);
        if (up) {
          const key = `${name}\n${up.bootId}`;
          let u = this.uptimes.get(key);
          if (!u) this.uptimes.set(key, (u = new UptimeSamples(this.retainMs)));
          u.add(up.uptimeS, this.now());
        }
        const verdicts = parseProbeMany(r.stdout);
        for (const p of chunk) {
          const v = verdicts.get(`${p.id.pid}:${p.id.starttime}`);
          if (v) p.resolve(v);
          else p.reject(new Error(`no probe result for pid ${p.id.pid}: ${r.stderr.slice(0, 200)}`));
        }
      } catch (e) {
        for (const p of chunk) p.reject(e as Error);
      }
    }
  }
}
