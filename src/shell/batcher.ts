/**
 * Coalesces the probes of all tasks on one node into one command. Supervising activities probe on
 * aligned ticks, so a node with a hundred running tasks costs one SSH session per tick, not a
 * hundred (the benchmark showed per-task probes overloading sshd at a few hundred tasks).
 */
import type { NodeRow, ProcessIdentity } from '../common/types';
import type { ShellPool } from './pool';
import { probeManyCommand } from './scripts';
import { decideProbe, type ProbeVerdict } from './status';

interface Pending {
  id: ProcessIdentity;
  resolve: (v: ProbeVerdict) => void;
  reject: (e: Error) => void;
}

const CHUNK = 200;

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
  sessions = 0;

  constructor(
    private readonly pool: ShellPool,
    private readonly windowMs = 100,
    private readonly timeoutMs = 30_000,
  ) {}

  probe(node: NodeRow, id: ProcessIdentity): Promise<ProbeVerdict> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(node.name);
      if (!q) {
        q = { node, items: [] };
        this.queues.set(node.name, q);
        setTimeout(() => void this.flush(node.name), this.windowMs);
      }
      q.node = node;
      q.items.push({ id, resolve, reject });
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
        const r = await this.pool.get(q.node).exec(probeManyCommand(chunk.map((p) => p.id)), { timeoutMs: this.timeoutMs });
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
