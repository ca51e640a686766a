/** What activities need from a node: run one command, optionally with stdin. */
export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface NodeShell {
  readonly name: string;
  exec(command: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Sessions (exec channels) opened so far: the benchmark counts them. */
  readonly sessionsOpened: number;
  /** TCP connections opened so far (0 for a local node). */
  readonly connectionsOpened: number;
  close(): void;
}

export interface SshNodeConfig {
  name: string;
  host: string;
  port: number;
  user: string;
  keyPath: string;
  knownHostsPath: string | null;
  /** Explicit opt-out of host key checking; off unless set per node. */
  insecureIgnoreHostKey: boolean;
}
