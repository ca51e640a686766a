import { readFileSync } from 'node:fs';
import { Client, type ClientChannel } from 'ssh2';
import { NodeConfigError, NodeUnreachableError } from '../common/errors';
import { hostKeyMatches, parseKnownHosts } from './knownhosts';
import { pipeWithBackpressure, type ExecResult, type NodeShell, type SshNodeConfig, type StreamSinks } from './types';

/** OpenSSH's MaxSessions defaults to 10 channels per connection; stay under it. */
export const MAX_CHANNELS_DEFAULT = 8;
/** Output streams (dispatch logs) beside the exec channels; sshd allows 10 sessions per connection by default. */
const MAX_STREAMS = 2;
const KEEPALIVE_MS = 5000;
const KEEPALIVE_COUNT = 3;
const READY_TIMEOUT_MS = 10_000;
const BACKOFF_MAX_MS = 10_000;

/**
 * One pooled ssh2 connection to one node, shared by every task on it. Channels are limited by a
 * small semaphore; a dropped connection is re-opened on the next use, with exponential backoff
 * after failures so an unreachable node costs one fast error, not a connect storm.
 */
export class SshShell implements NodeShell {
  readonly name: string;
  sessionsOpened = 0;
  connectionsOpened = 0;
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private failures = 0;
  private nextTryAt = 0;
  private active = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  private streams = 0;

  constructor(
    private readonly cfg: SshNodeConfig,
    private readonly maxChannels = MAX_CHANNELS_DEFAULT,
  ) {
    this.name = cfg.name;
  }

  private connect(fresh = false): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const wait = this.nextTryAt - Date.now();
    if (wait > 0 && !fresh) {
      return Promise.reject(new NodeUnreachableError(this.name, `unreachable; next reconnect attempt in ${Math.ceil(wait / 1000)}s`));
    }
    this.connecting = new Promise<Client>((resolve, reject) => {
      let privateKey: Buffer;
      let known: ReturnType<typeof parseKnownHosts> = [];
      try {
        privateKey = readFileSync(this.cfg.keyPath);
        if (!this.cfg.insecureIgnoreHostKey) {
          if (!this.cfg.knownHostsPath) throw new Error('no known_hosts file configured (and host key checking is on)');
          known = parseKnownHosts(readFileSync(this.cfg.knownHostsPath, 'utf8'));
        }
      } catch (e) {
        reject(new NodeConfigError(this.name, (e as Error).message));
        return;
      }
      const c = new Client();
      let hostKeyRejected = false;
      c.on('ready', () => {
        this.connectionsOpened++;
        this.client = c;
        this.failures = 0;
        resolve(c);
      });
      c.on('error', (err) => {
        if (this.client === c) this.client = null;
        if (hostKeyRejected) reject(new NodeConfigError(this.name, `host key does not match ${this.cfg.knownHostsPath}`));
        else reject(new NodeUnreachableError(this.name, err.message));
      });
      c.on('close', () => {
        if (this.client === c) this.client = null;
        reject(new NodeUnreachableError(this.name, 'connection closed'));
      });
      c.connect({
        host: this.cfg.host,
        port: this.cfg.port,
        username: this.cfg.user,
        privateKey,
        keepaliveInterval: KEEPALIVE_MS,
        keepaliveCountMax: KEEPALIVE_COUNT,
        readyTimeout: READY_TIMEOUT_MS,
        hostVerifier: (key: Buffer) => {
          if (this.cfg.insecureIgnoreHostKey) return true;
          const ok = hostKeyMatches(known, this.cfg.host, this.cfg.port, key);
          if (!ok) hostKeyRejected = true;
          return ok;
        },
      });
    }).then(
      (c) => {
        this.connecting = null;
        return c;
      },
      (e: unknown) => {
        this.connecting = null;
        this.failures++;
        this.nextTryAt = Date.now() + Math.min(BACKOFF_MAX_MS, 250 * 2 ** Math.min(this.failures, 10));
        throw e;
      },
    );
    return this.connecting;
  }

  private async acquire(): Promise<void> {
    if (this.active < this.maxChannels) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }

  async exec(command: string, opts: { stdin?: string; timeoutMs?: number; fresh?: boolean } = {}): Promise<ExecResult> {
    if (this.closed) throw new NodeUnreachableError(this.name, 'shell closed');
    await this.acquire();
    try {
      const client = await this.connect(opts.fresh === true);
      return await this.run(client, command, opts);
    } finally {
      this.release();
    }
  }

  private run(client: Client, command: string, opts: { stdin?: string; timeoutMs?: number }): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      client.exec(command, (err, ch: ClientChannel) => {
        if (err) {
          // A channel that cannot open usually means a dead connection: drop it so the next call reconnects.
          if (this.client === client) {
            this.client = null;
            client.end();
          }
          reject(new NodeUnreachableError(this.name, `exec failed: ${err.message}`));
          return;
        }
        this.sessionsOpened++;
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let timer: NodeJS.Timeout | undefined;
        if (opts.timeoutMs) {
          timer = setTimeout(() => {
            ch.close();
            reject(new NodeUnreachableError(this.name, `command timed out after ${opts.timeoutMs} ms`));
          }, opts.timeoutMs);
        }
        ch.on('data', (b: Buffer) => out.push(b));
        ch.stderr.on('data', (b: Buffer) => errb.push(b));
        let code: number | null = null;
        let signal: string | null = null;
        let exited = false;
        ch.on('exit', (c: number | null, s?: string) => {
          exited = true;
          code = c;
          signal = s ?? null;
        });
        ch.on('close', () => {
          if (timer) clearTimeout(timer);
          if (!exited) {
            // The connection went before the command reported how it ended: its outcome is
            // unknown (a launch may have started its process), which is not a failure of the command.
            reject(new NodeUnreachableError(this.name, 'connection lost before the command finished'));
            return;
          }
          resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errb).toString('utf8') });
        });
        ch.end(opts.stdin ?? '');
      });
    });
  }

  async stream(
    command: string,
    sinks: StreamSinks,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ code: number | null; signal: string | null }> {
    if (this.closed) throw new NodeUnreachableError(this.name, 'shell closed');
    if (this.streams >= MAX_STREAMS)
      throw new NodeUnreachableError(this.name, `already ${MAX_STREAMS} output streams open on this connection`);
    this.streams++;
    try {
      const client = await this.connect();
      return await new Promise((resolve, reject) => {
        client.exec(command, (err, ch: ClientChannel) => {
          if (err) {
            reject(new NodeUnreachableError(this.name, `exec failed: ${err.message}`));
            return;
          }
          this.sessionsOpened++;
          pipeWithBackpressure(ch, sinks.stdout);
          pipeWithBackpressure(ch.stderr, sinks.stderr);
          const stop = (): void => void ch.close();
          opts.signal?.addEventListener('abort', stop, { once: true });
          let exit: { code: number | null; signal: string | null } | null = null;
          ch.on('exit', (c: number | null, sig?: string) => {
            exit = { code: c, signal: sig ?? null };
          });
          ch.on('close', () => {
            opts.signal?.removeEventListener('abort', stop);
            if (exit) resolve(exit);
            else if (opts.signal?.aborted) resolve({ code: null, signal: 'aborted' });
            else reject(new NodeUnreachableError(this.name, 'connection lost before the command finished'));
          });
          ch.end();
        });
      });
    } finally {
      this.streams--;
    }
  }

  close(): void {
    this.closed = true;
    this.client?.end();
    this.client = null;
  }
}
