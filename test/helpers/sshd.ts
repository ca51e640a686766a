// Starts throwaway OpenSSH servers on 127.0.0.1, one per test "node".
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readProcStat } from './proc';

export interface SshNode {
  name: string;
  host: '127.0.0.1';
  port: number;
  user: string;
  /** Client private key (ed25519, no passphrase). */
  keyPath: string;
  /** Holds `[127.0.0.1]:PORT <type> <key>` for this node's host key. */
  knownHostsPath: string;
  /** `<dir>/work`: where this node's tasks keep their run directories. */
  workDir: string;
  dir: string;
  /**
   * Stops sshd like a crash of the daemon: the listener AND the per-connection sshd processes,
   * so open client connections drop. Processes started through ssh are never signalled; ones
   * detached with setsid (and not writing to the dead channel) keep running.
   * `keepSessions: true` stops only the listener (like `systemctl restart ssh`): open
   * connections keep working, new ones are refused.
   */
  stop(opts?: { keepSessions?: boolean }): Promise<void>;
  /** Starts sshd again on the same port with the same keys. */
  start(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd'; // absolute: sshd refuses to re-exec itself otherwise
const READY_TIMEOUT_MS = 15_000;
const SETPRIV = fs.existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : null;

/** perl -e: become a child subreaper, then exec sshd in place (same pid); sshd reaps with waitpid(-1). */
const PRCTL_SYSCALL = process.arch === 'arm64' ? 167 : 157;
const SUBREAPER = `syscall(${PRCTL_SYSCALL}, 36, 1, 0, 0, 0) == 0 or die "prctl: $!"; exec { $ARGV[0] } @ARGV or die "exec: $!"`;

const live = new Set<ChildProcess>();
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  if (!process.env.DISPATCH_KEEP_TMP) for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dispatch-test', '-f', file], { stdio: 'ignore' });
}

// One client key pair per directory (per test file unless clientKeyDir says otherwise).
let defaultClientKeyDir: string | undefined;
function clientKey(dir?: string): string {
  if (!dir) {
    if (!defaultClientKeyDir) {
      defaultClientKeyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatch-sshkey-'));
      tempDirs.push(defaultClientKeyDir);
    }
    dir = defaultClientKeyDir;
  }
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'id_ed25519');
  if (!fs.existsSync(key)) keygen(key);
  return key;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** True once something on `port` sends an SSH banner. */
function bannerReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('close', () => done(buf.startsWith('SSH-')));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length >= 4) done(buf.startsWith('SSH-'));
    });
  });
}

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

function waitExit(c: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs); // ref'd: keeps the loop alive (child is unref'd)
    c.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

interface Proc {
  pid: number;
  starttime: string; // with pid, identifies a process across pid reuse
}
const same = (p: Proc) => readProcStat(p.pid)?.starttime === p.starttime;

/** sshd processes below `root` (per-connection monitors and their privsep children); stops at non-sshd. */
function sshdDescendants(root: number): Proc[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readProcStat(Number(e));
    if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), Number(e)]);
  }
  const out: Proc[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      let comm = '';
      try {
        comm = fs.readFileSync(`/proc/${c}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm !== 'sshd') continue; // a user's process: never ours to kill
      const st = readProcStat(c);
      if (!st) continue;
      out.push({ pid: c, starttime: st.starttime });
      walk(c);
    }
  };
  walk(root);
  return out;
}

class PortInUse extends Error {}

/** Starts a per-node sshd (own host key, config, known_hosts) on a free port of 127.0.0.1. */
export async function startSshd(
  name: string,
  opts: {
    baseDir?: string;
    clientKeyDir?: string;
    /** sshd's ForceCommand: a wrapper that runs every command. */ forceCommand?: string;
    /**
     * Make the listener a child subreaper (prctl PR_SET_CHILD_SUBREAPER) so that it reaps the
     * detached task processes that end below it. PID 1 here does not reap, and a benchmark with
     * thousands of tasks would otherwise leave thousands of zombies holding pids after it.
     */
    reapOrphans?: boolean;
  } = {},
): Promise<SshNode> {
  fs.mkdirSync('/run/sshd', { recursive: true }); // privilege separation dir; sshd refuses to start without it
  const base = opts.baseDir;
  if (base) fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base ?? os.tmpdir(), `dispatch-sshd-${name.replace(/[^\w.-]/g, '_')}-`));
  if (!base) tempDirs.push(dir);
  const workDir = path.join(dir, 'work');
  fs.mkdirSync(workDir);

  const keyPath = clientKey(opts.clientKeyDir);
  const authorizedKeys = path.join(dir, 'authorized_keys');
  fs.copyFileSync(`${keyPath}.pub`, authorizedKeys);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  keygen(hostKey);
  const hostPub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHostsPath = path.join(dir, 'known_hosts');
  const config = path.join(dir, 'sshd_config');

  const writeFiles = (port: number) => {
    fs.writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostPub}\n`);
    fs.writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin yes',
        'MaxSessions 64',
        'MaxStartups 100:30:200',
        'LogLevel ERROR',
        // Debian's bash sources ~/.bashrc for every command sshd runs (SSH_SOURCE_BASHRC) unless
        // SHLVL says it is nested. On these machines root's ~/.bashrc runs `pyenv init`, whose
        // rehash lock serialised every SSH command (83 waiting at once with 1,000 tasks). A node's
        // shell start-up is the node's business, not dispatch's: the test nodes skip it.
        'SetEnv SHLVL=1',
        'Subsystem sftp internal-sftp',
        ...(opts.forceCommand ? [`ForceCommand ${opts.forceCommand}`] : []),
        '',
      ].join('\n'),
    );
  };

  let child: ChildProcess | undefined;
  let stderr = '';
  const launch = async (port: number): Promise<ChildProcess> => {
    const sshdArgs = ['-D', '-e', '-f', config];
    const args = opts.reapOrphans ? ['-e', SUBREAPER, SSHD, ...sshdArgs] : sshdArgs;
    const cmd = opts.reapOrphans ? 'perl' : SSHD;
    // setpriv --pdeathsig: the kernel kills the listener if this process dies without 'exit' hooks.
    const c = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args], { detached: false, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(cmd, args, { detached: false, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(c);
    c.once('exit', () => live.delete(c));
    c.unref(); // a forgotten sshd must not keep the test process alive; the exit hook kills it
    (c.stderr as net.Socket | null)?.unref();
    c.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited(c)) {
        const msg = `sshd for ${name} exited (code ${c.exitCode}, signal ${c.signalCode}) before ready:\n${stderr}`;
        throw /address already in use|cannot bind/i.test(stderr) ? new PortInUse(msg) : new Error(msg);
      }
      // Port may be held by a previous instance's lingering state; only the banner proves it is ours.
      if (await bannerReady(port)) return c;
      await new Promise((r) => setTimeout(r, 100));
    }
    c.kill('SIGKILL');
    throw new Error(`sshd for ${name} on port ${port} not ready after ${READY_TIMEOUT_MS / 1000}s:\n${stderr}`);
  };

  let port = 0;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    writeFiles(port);
    try {
      child = await launch(port);
    } catch (e) {
      if (!(e instanceof PortInUse) || attempt >= 3) throw e;
    }
  }

  let current: ChildProcess | null = child;
  // Connection processes left running by stop({ keepSessions: true }). Once their listener is
  // gone they are reparented to init, so remember them for a later dropping stop().
  let kept: Proc[] = [];
  return {
    name,
    host: '127.0.0.1',
    port,
    user: os.userInfo().username,
    keyPath,
    knownHostsPath,
    workDir,
    dir,
    async stop(o = {}) {
      const c = current;
      current = null;
      kept = kept.filter(same);
      // Collect before the listener dies: afterwards its children are reparented and untraceable.
      const conns = [...kept, ...kept.flatMap((p) => sshdDescendants(p.pid))];
      if (c && c.pid !== undefined && !exited(c)) {
        conns.push(...sshdDescendants(c.pid));
        c.kill('SIGTERM');
        if (!(await waitExit(c, 5_000))) {
          c.kill('SIGKILL');
          await waitExit(c, 5_000);
        }
      }
      if (o.keepSessions) {
        kept = conns;
        return;
      }
      kept = [];
      for (const p of conns) {
        if (!same(p)) continue; // exited, pid maybe reused
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
    async start() {
      if (current && !exited(current)) return;
      stderr = '';
      current = await launch(port);
    },
  };
}
