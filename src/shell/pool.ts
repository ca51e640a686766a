import type { NodeRow } from '../common/types';
import { LocalShell } from './local';
import { SshShell } from './ssh';
import type { NodeShell } from './types';

/** Turns a node row into its connection settings, or says what is missing. */
export function shellFor(row: NodeRow): NodeShell {
  if (row.kind === 'local') return new LocalShell(row.name);
  if (!row.host) throw new Error(`node ${row.name} has no host`);
  if (!row.key_path) throw new Error(`node ${row.name} has no key path (dispatch node add --key PATH)`);
  return new SshShell({
    name: row.name,
    host: row.host,
    port: row.port ?? 22,
    user: row.user ?? process.env.USER ?? 'root',
    keyPath: row.key_path,
    knownHostsPath: row.known_hosts,
    insecureIgnoreHostKey: row.insecure_ignore_host_key === 1,
  });
}

/**
 * One shell per node for the whole worker process. A node whose settings change gets a new shell;
 * the old one is closed.
 */
export class ShellPool {
  private shells = new Map<string, { key: string; shell: NodeShell }>();

  get(row: NodeRow): NodeShell {
    const key = JSON.stringify([row.kind, row.host, row.port, row.user, row.key_path, row.known_hosts, row.insecure_ignore_host_key]);
    const have = this.shells.get(row.name);
    if (have && have.key === key) return have.shell;
    have?.shell.close();
    const shell = shellFor(row);
    this.shells.set(row.name, { key, shell });
    return shell;
  }

  stats(): { nodes: number; connections: number; sessions: number } {
    let connections = 0;
    let sessions = 0;
    for (const { shell } of this.shells.values()) {
      connections += shell.connectionsOpened;
      sessions += shell.sessionsOpened;
    }
    return { nodes: this.shells.size, connections, sessions };
  }

  closeAll(): void {
    for (const { shell } of this.shells.values()) shell.close();
    this.shells.clear();
  }
}
