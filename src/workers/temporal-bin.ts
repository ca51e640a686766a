/** Finding and starting the pinned Temporal CLI's dev server. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../common/errors';
import { SEARCH_ATTRIBUTE_FLAGS } from '../common/search-attributes';

export function temporalBin(): string {
  if (process.env.TEMPORAL_BIN && existsSync(process.env.TEMPORAL_BIN)) return process.env.TEMPORAL_BIN;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'temporal');
    if (dir && existsSync(p)) return p;
  }
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    const p = path.join(gopath, 'bin', 'temporal');
    if (existsSync(p)) return p;
  } catch {
    /* no go on PATH */
  }
  throw new UserError('the temporal CLI is not installed: run `npm run setup` (go install github.com/temporalio/cli/cmd/temporal@v1.5.1)');
}

export interface DevServerOptions {
  dir: string;
  port: number;
  uiPort: number;
  ip?: string;
  headless?: boolean;
}

export function startDevServer(o: DevServerOptions): ChildProcess {
  mkdirSync(o.dir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    o.ip ?? '127.0.0.1',
    '--port',
    String(o.port),
    '--db-filename',
    path.join(o.dir, 'temporal.db'),
    '--log-level',
    'warn',
    ...SEARCH_ATTRIBUTE_FLAGS.flatMap((s) => ['--search-attribute', s]),
  ];
  if (o.headless) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort));
  // The server must not outlive `dispatch dev`, even if dev is SIGKILLed: ask the kernel to TERM it.
  if (existsSync('/usr/bin/setpriv')) {
    return spawn('/usr/bin/setpriv', ['--pdeathsig', 'TERM', '--', temporalBin(), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return spawn(temporalBin(), args, { stdio: ['ignore', 'inherit', 'inherit'] });
}
