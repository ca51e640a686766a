/** What activities need from a node: run one command, optionally with stdin. */
export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface StreamSinks {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Pipes `from` into `to`, pausing `from` while `to` is full. */
export function pipeWithBackpressure(from: NodeJS.ReadableStream, to: NodeJS.WritableStream): void {
  from.on('data', (b: Buffer) => {
    if (!to.write(b)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
}

export interface NodeShell {
  readonly name: string;
  /**
   * `fresh`: try a real connection even while a failed node is in its reconnect backoff. The node
   * probe uses it: a health check must see the node as it is now, not replay an earlier failure.
   */
  exec(command: string, opts?: { stdin?: string; timeoutMs?: number; fresh?: boolean }): Promise<ExecResult>;
  /**
   * Runs a command whose output may be large or endless, writing it to `sinks` as it arrives, with
   * backpressure (a slow reader slows the node, memory stays bounded). It does not take one of
   * the channels that exec() shares out, so a long stream never delays a probe. `signal` ends it.
   */
  stream(command: string, sinks: StreamSinks, opts?: { signal?: AbortSignal }): Promise<{ code: number | null; signal: string | null }>;
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
