/** Global options shared by every command, resolved once. */
import { Client, Connection } from '@temporalio/client';
import path from 'node:path';
import { connectOptions, describeConnection, resolveConnection, type TemporalConnectionSettings } from '../client/connection';
import { TemporalUnavailableError } from '../common/errors';
import { loadConfig, type DispatchConfig } from '../config/config';
import { Store } from '../store/store';

export interface GlobalOptions {
  db?: string;
  config?: string;
  address?: string;
  namespace?: string;
  profile?: string;
}

export interface Ctx {
  dbPath: string;
  configPath: string | undefined;
  /** The global flags as given (dispatch dev reads --namespace alone: it talks to its own server). */
  globals: GlobalOptions;
  /** Temporal connection settings: profile and TEMPORAL_* environment, flags on top (read once). */
  temporal(): TemporalConnectionSettings;
  config(): DispatchConfig;
  /** Opens the store read-write (creating/migrating it). */
  store(): Store;
  /** Opens an existing store read-only, for reports. */
  readStore(): Store;
  client(): Promise<Client>;
  close(): Promise<void>;
}

/**
 * How a command's action runs: main() builds the Ctx, runs `fn`, and turns a returned number
 * into the exit code (errors are mapped by exitCodeFor).
 */
export type Run = (fn: (ctx: Ctx) => Promise<number | void>) => Promise<void>;

export function makeCtx(g: GlobalOptions): Ctx {
  const dbPath = path.resolve(g.db ?? process.env.DISPATCH_DB ?? 'dispatch.db');
  let temporal: TemporalConnectionSettings | null = null;
  const settings = (): TemporalConnectionSettings =>
    (temporal ??= resolveConnection({ profile: g.profile, address: g.address, namespace: g.namespace }));
  let cfg: DispatchConfig | null = null;
  const stores: Store[] = [];
  let conn: Connection | null = null;
  let client: Client | null = null;
  return {
    dbPath,
    configPath: g.config,
    globals: g,
    temporal: settings,
    config() {
      cfg ??= loadConfig(g.config);
      return cfg;
    },
    store() {
      const s = new Store(dbPath);
      stores.push(s);
      return s;
    },
    readStore() {
      const s = new Store(dbPath, { mustExist: true, readonly: true });
      stores.push(s);
      return s;
    },
    async client() {
      if (client) return client;
      const t = settings();
      try {
        conn = await Connection.connect({ ...connectOptions(t), connectTimeout: 5000 });
        await conn.workflowService.getSystemInfo({});
      } catch (e) {
        const why = (e as Error).message.split('\n')[0];
        throw new TemporalUnavailableError(
          describeConnection(t),
          ` (${why}): start it with \`dispatch dev\`, or pass --address / --profile (or TEMPORAL_ADDRESS)`,
        );
      }
      client = new Client({ connection: conn, namespace: t.namespace });
      return client;
    },
    async close() {
      for (const s of stores) s.close();
      await conn?.close().catch(() => undefined);
    },
  };
}
