/** The nodes table: adding and updating nodes, their status, and the probe rounds that take them offline. */
import { EventKind } from '../common/constants';
import type Database from 'better-sqlite3';
import type { NodeRow } from '../common/types';
import { nowIso, type StoreContext } from './context';

export interface NodeInput {
  name: string;
  kind: 'ssh' | 'local';
  host: string | null;
  port: number | null;
  user: string | null;
  keyPath: string | null;
  knownHosts: string | null;
  insecureIgnoreHostKey: boolean;
  slots: number;
  workDir: string;
}

/** A node that runs tasks on this machine, without SSH. */
export function localNodeInput(name: string, slots: number, workDir: string): NodeInput {
  return {
    name,
    kind: 'local',
    host: null,
    port: null,
    user: null,
    keyPath: null,
    knownHosts: null,
    insecureIgnoreHostKey: false,
    slots,
    workDir,
  };
}

export class Nodes {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const d: Database.Database = ctx.db;
    this.s = {
      getNode: d.prepare(`SELECT * FROM nodes WHERE name = ?`),
      listNodes: d.prepare(`SELECT * FROM nodes ORDER BY name`),
      // Re-adding a node keeps its running_count (its tasks still hold those slots) and brings a drained node back online.
      upsertNode: d.prepare(`INSERT INTO nodes (name, host, slots, running_count, kind, port, user, key_path, known_hosts,
          insecure_ignore_host_key, work_dir, status, missed_probes, created_at)
        VALUES (@name, @host, @slots, 0, @kind, @port, @user, @key_path, @known_hosts, @insecure, @work_dir, 'online', 0, @now)
        ON CONFLICT(name) DO UPDATE SET host = excluded.host, slots = excluded.slots, kind = excluded.kind,
          port = excluded.port, user = excluded.user, key_path = excluded.key_path, known_hosts = excluded.known_hosts,
          insecure_ignore_host_key = excluded.insecure_ignore_host_key, work_dir = excluded.work_dir,
          running_count = COALESCE(nodes.running_count, 0),
          status = CASE WHEN nodes.status = 'drained' THEN 'online' ELSE COALESCE(nodes.status, 'online') END`),
      setNodeStatus: d.prepare(`UPDATE nodes SET status = ? WHERE name = ?`),
      activeOn: d.prepare(`SELECT id FROM tasks WHERE node = ? AND status IN ('dispatched', 'running') ORDER BY seq`),
      queuedPinned: d.prepare(`SELECT id FROM tasks WHERE pin_node = ? AND status = 'queued' ORDER BY seq`),
      blockPinned: d.prepare(`UPDATE tasks SET status = 'blocked', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND status = 'queued'`),
      deleteNode: d.prepare(`DELETE FROM nodes WHERE name = ?`),
      probeOk: d.prepare(`UPDATE nodes SET last_seen_at = ?, missed_probes = 0 WHERE name = ?`),
      probeMiss: d.prepare(`UPDATE nodes SET missed_probes = COALESCE(missed_probes, 0) + 1 WHERE name = ?`),
    };
  }

  addNode(n: NodeInput): NodeRow {
    this.s.upsertNode.run({
      name: n.name,
      host: n.host,
      slots: n.slots,
      kind: n.kind,
      port: n.port,
      user: n.user,
      key_path: n.keyPath,
      known_hosts: n.knownHosts,
      insecure: n.insecureIgnoreHostKey ? 1 : 0,
      work_dir: n.workDir,
      now: nowIso(),
    });
    return this.getNode(n.name)!;
  }

  getNode(name: string): NodeRow | null {
    return (this.s.getNode.get(name) as NodeRow | undefined) ?? null;
  }

  listNodes(): NodeRow[] {
    return this.s.listNodes.all() as NodeRow[];
  }

  /**
   * Removes a node that holds no dispatched or running task (refused otherwise, naming them).
   * Queued tasks pinned to it can never run: they become blocked, with the reason.
   */
  removeNode(name: string): { removed: boolean; busy: string[]; blocked: { taskId: string; reason: string }[] } {
    return this.ctx.tx(() => {
      if (!this.getNode(name)) return { removed: false, busy: [], blocked: [] };
      const busy = (this.s.activeOn.all(name) as { id: string }[]).map((r) => r.id);
      if (busy.length) return { removed: false, busy, blocked: [] };
      const reason = `blocked: its node ${name} was removed`;
      const now = nowIso();
      const blocked: { taskId: string; reason: string }[] = [];
      for (const { id } of this.s.queuedPinned.all(name) as { id: string }[]) {
        if (this.s.blockPinned.run({ id, reason, now }).changes !== 1) continue;
        this.ctx.event(id, null, EventKind.blocked, reason);
        blocked.push({ taskId: id, reason });
      }
      this.s.deleteNode.run(name);
      this.ctx.event(null, null, EventKind.nodeRemoved, { node: name, blocked: blocked.map((b) => b.taskId) });
      return { removed: true, busy: [], blocked };
    });
  }

  setNodeStatus(name: string, status: string): boolean {
    return this.s.setNodeStatus.run(status, name).changes === 1;
  }

  /**
   * A probe round: answered nodes reset their miss count; a node that misses `offlineAfter`
   * probes in a row goes offline. Returns the nodes that just went offline.
   */
  recordProbe(name: string, ok: boolean, offlineAfter: number): { wentOffline: boolean; status: string | null } {
    return this.ctx.tx(() => {
      if (ok) this.s.probeOk.run(nowIso(), name);
      else this.s.probeMiss.run(name);
      const n = this.getNode(name);
      if (!ok && n && n.status === 'online' && (n.missed_probes ?? 0) >= offlineAfter) {
        this.s.setNodeStatus.run('offline', name);
        this.ctx.event(null, null, EventKind.nodeOffline, { node: name, missed: n.missed_probes });
        return { wentOffline: true, status: 'offline' };
      }
      return { wentOffline: false, status: n?.status ?? null };
    });
  }
}
