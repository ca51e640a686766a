import { spawn } from 'node:child_process';
import { pipeWithBackpressure, type ExecResult, type NodeShell, type StreamSinks } from './types';

/** Runs node commands on this machine with /bin/sh, exactly as they would run over SSH. */
export class LocalShell implements NodeShell {
  sessionsOpened = 0;
  readonly connectionsOpened = 0;
  constructor(readonly name: string) {}

  exec(command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    this.sessionsOpened++;
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) {
        timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
      }
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.stdin ?? '');
    });
  }

  stream(
    command: string,
    sinks: StreamSinks,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ code: number | null; signal: string | null }> {
    this.sessionsOpened++;
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
      pipeWithBackpressure(child.stdout, sinks.stdout);
      pipeWithBackpressure(child.stderr, sinks.stderr);
      const stop = (): void => void child.kill('SIGTERM');
      opts.signal?.addEventListener('abort', stop, { once: true });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        opts.signal?.removeEventListener('abort', stop);
        resolve({ code, signal });
      });
    });
  }

  close(): void {}
}
