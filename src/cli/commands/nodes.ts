/** dispatch node add | list | remove | drain | resume */
import type { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { NotFoundError, UserError } from '../../common/errors';
import { signalBlocked } from '../../client/tasks';
import { assertNodeName, assertSafePath } from '../../common/validate';
import { positiveInt } from '../args';
import type { Run } from '../context';
import { printJson, table } from '../format';

export function registerNodes(program: Command, run: Run): void {
  const node = program.command('node').description('manage nodes');
  node
    .command('add <name>')
    .description('add or update a node: --host for SSH, --local for this machine')
    .option('--host <host>', 'SSH host')
    .option('--port <n>', 'SSH port', '22')
    .option('--user <user>', 'SSH user (default: current user)')
    .option('--key <path>', 'private key (default ~/.ssh/id_ed25519)')
    .option('--known-hosts <path>', 'known_hosts file the host key is checked against (default ~/.ssh/known_hosts)')
    .option('--insecure-ignore-host-key', 'do not check the host key (explicit opt-out; off by default)')
    .option('--local', 'run tasks on this machine without SSH')
    .option('--work-dir <path>', 'where attempt directories live on the node')
    .requiredOption('--slots <n>', 'tasks this node runs at once')
    .action((name: string, o: Record<string, string | boolean | undefined>) =>
      run(async (ctx) => {
        assertNodeName(name);
        const slots = positiveInt('--slots', String(o.slots), 0);
        const local = o.local === true;
        if (local === Boolean(o.host)) throw new UserError('give exactly one of --host HOST or --local');
        const home = os.homedir();
        const workDir = assertSafePath(o.workDir ?? (local ? path.resolve('.dispatch/runs') : '.dispatch/runs'), '--work-dir');
        const keyPath = local ? null : path.resolve(String(o.key ?? path.join(home, '.ssh/id_ed25519')));
        const knownHosts = local ? null : path.resolve(String(o.knownHosts ?? path.join(home, '.ssh/known_hosts')));
        if (keyPath && !existsSync(keyPath)) throw new UserError(`key file ${keyPath} does not exist (--key PATH)`);
        if (knownHosts && !o.insecureIgnoreHostKey && !existsSync(knownHosts)) {
          throw new UserError(`known_hosts file ${knownHosts} does not exist (--known-hosts PATH, or --insecure-ignore-host-key)`);
        }
        if (o.host && !/^[A-Za-z0-9.:_-]{1,253}$/.test(String(o.host))) throw new UserError(`invalid --host ${JSON.stringify(o.host)}`);
        const row = ctx.store().addNode({
          name,
          kind: local ? 'local' : 'ssh',
          host: local ? null : String(o.host),
          port: local ? null : positiveInt('--port', String(o.port), 1),
          user: local ? null : String(o.user ?? os.userInfo().username),
          keyPath,
          knownHosts,
          insecureIgnoreHostKey: o.insecureIgnoreHostKey === true,
          slots,
          workDir,
        });
        const where = row.host ? ` ${row.user}@${row.host}:${row.port}` : '';
        console.log(`node ${row.name}: ${row.kind}${where}, ${row.slots} slots, ${row.status}`);
      }),
    );
  node
    .command('list')
    .description('list nodes')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const rows = ctx
          .readStore()
          .listNodes()
          .map((n) => ({
            name: n.name,
            kind: n.kind,
            host: n.host,
            port: n.port,
            status: n.status,
            slots: n.slots,
            running_count: n.running_count,
            last_seen_at: n.last_seen_at,
            work_dir: n.work_dir,
          }));
        if (o.json) printJson(rows);
        else if (!rows.length) console.log('no nodes: add one with `dispatch node add`');
        else console.log(table(rows, ['name', 'kind', 'host', 'port', 'status', 'slots', 'running_count', 'last_seen_at']));
      }),
    );
  node
    .command('remove <name>')
    .description('remove a node with no dispatched or running task; queued tasks pinned to it become blocked')
    .option('--json', 'print {"node": ..., "removed": true, "blocked": [task ids]}')
    .action((name: string, o: { json?: boolean }) =>
      run(async (ctx) => {
        assertNodeName(name);
        const r = ctx.store().removeNode(name);
        if (r.busy.length) {
          throw new UserError(
            `node ${name} still has dispatched or running tasks: ${r.busy.join(', ')} (drain it and wait, or cancel them)`,
          );
        }
        if (!r.removed) throw new NotFoundError(`no node named ${name}`);
        // Their workflows end as blocked now; without Temporal they see it at their next check of the books.
        const unsignalled: string[] = [];
        if (r.blocked.length) {
          const client = await ctx.client().catch(() => null);
          for (const b of r.blocked) {
            const ok = client
              ? await signalBlocked(client, b.taskId, b.reason).then(
                  () => true,
                  () => false,
                )
              : false;
            if (!ok) unsignalled.push(b.taskId);
          }
        }
        const blocked = r.blocked.map((b) => b.taskId);
        if (o.json) return printJson({ node: name, removed: true, blocked });
        console.log(`node ${name} removed${blocked.length ? `; blocked (pinned to it): ${blocked.join(', ')}` : ''}`);
        if (unsignalled.length) console.log(`not signalled (they end at their next check of the books): ${unsignalled.join(', ')}`);
      }),
    );
  for (const [cmd, status, what] of [
    ['drain', 'drained', 'stop giving the node new tasks (running ones finish)'],
    ['resume', 'online', 'give a drained node tasks again'],
  ] as const) {
    node
      .command(`${cmd} <name>`)
      .description(what)
      .action((name: string) =>
        run(async (ctx) => {
          assertNodeName(name);
          if (!ctx.store().setNodeStatus(name, status)) throw new UserError(`no node named ${name}`);
          console.log(`node ${name}: ${status}`);
        }),
      );
  }
}
