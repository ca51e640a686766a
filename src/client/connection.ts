/**
 * How dispatch reaches Temporal: the same settings as the `temporal` CLI (environment variables
 * and temporal.toml profiles, read by @temporalio/envconfig), with --address and --namespace on
 * top. Certificates are read and checked here, so a bad one is a one-line error naming its
 * setting; nothing here prints key material or an API key.
 */
import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../common/errors';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';

/** What Connection.connect and NativeConnection.connect both take, and where it came from. */
export interface TemporalConnectionSettings {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
  /** The profile read, if a config file had one (for messages). */
  profile?: string;
}

export interface ResolveOptions {
  profile?: string;
  address?: string;
  namespace?: string;
  env?: NodeJS.ProcessEnv;
}

type TlsKey = 'serverCACert' | 'clientCert' | 'clientKey';
/** The setting's name in temporal.toml and in the environment, for errors. */
const SETTING: Record<TlsKey, { toml: string; env: string }> = {
  serverCACert: { toml: 'tls.server_ca_cert_path', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' },
  clientCert: { toml: 'tls.client_cert_path', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH' },
  clientKey: { toml: 'tls.client_key_path', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH' },
};

function settingName(key: TlsKey, data: boolean): string {
  const s = SETTING[key];
  return data ? `${s.toml.replace(/_path$/, '_data')} (${s.env.replace(/_PATH$/, '_DATA')})` : `${s.toml} (${s.env})`;
}

/** Reads one PEM setting and checks that it is what its name says, without echoing its content. */
function pem(key: TlsKey, src: ConfigDataSource | undefined): Buffer | undefined {
  if (!src) return undefined;
  const isPath = 'path' in src;
  const name = settingName(key, !isPath);
  let buf: Buffer;
  if (isPath) {
    try {
      buf = readFileSync(src.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new UserError(`Temporal connection: ${name}: cannot read ${src.path} (${code})`);
    }
  } else {
    buf = Buffer.from(src.data);
  }
  const where = isPath ? ` ${src.path}` : '';
  try {
    if (key === 'clientKey') createPrivateKey(buf);
    else new X509Certificate(buf);
  } catch {
    const what = key === 'clientKey' ? 'a PEM private key' : 'a PEM certificate';
    throw new UserError(`Temporal connection: ${name}:${where} is not ${what}`);
  }
  return buf;
}

function tlsConfig(p: ClientConfigProfile): TLSConfig | boolean | undefined {
  const t = p.tls;
  if (t === undefined) return p.apiKey !== undefined ? true : undefined;
  if (t.disabled === true) return false;
  const crt = pem('clientCert', t.clientCert);
  const key = pem('clientKey', t.clientKey);
  if (Boolean(crt) !== Boolean(key)) {
    const missing = crt ? 'clientKey' : 'clientCert';
    throw new UserError(`Temporal connection: ${settingName(missing, false)} is missing: a client certificate needs its key`);
  }
  return {
    serverNameOverride: t.serverName,
    serverRootCACertificate: pem('serverCACert', t.serverCACert),
    clientCertPair: crt && key ? { crt, key } : undefined,
  };
}

/** The config file the temporal CLI would read, when it exists and holds nothing but blanks and comments. */
function blankConfigFile(env: NodeJS.ProcessEnv): boolean {
  const file =
    env.TEMPORAL_CONFIG_FILE || path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'temporalio', 'temporal.toml');
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .every((l) => l.trim() === '' || l.trim().startsWith('#'));
  } catch {
    return false;
  }
}

/**
 * The connection settings: the profile (explicit, else TEMPORAL_PROFILE, else "default" if the
 * config file has it), the TEMPORAL_* environment over it, and the flags over both.
 */
export function resolveConnection(o: ResolveOptions = {}): TemporalConnectionSettings {
  const env = o.env ?? process.env;
  let p: ClientConfigProfile;
  const blank = blankConfigFile(env);
  if (blank && (o.profile ?? env.TEMPORAL_PROFILE)) {
    throw new UserError(`Temporal connection config: profile '${o.profile ?? env.TEMPORAL_PROFILE}' not found: the config file is empty`);
  }
  try {
    p = loadClientConfigProfile({
      profile: o.profile,
      // envconfig 1.24 fails on a blank file ("reading 'default'"): a blank file is no file.
      disableFile: blank,
      overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const file = env.TEMPORAL_CONFIG_FILE ? ` (${env.TEMPORAL_CONFIG_FILE})` : '';
    throw new UserError(`Temporal connection config${file}: ${msg}`);
  }
  const tls = tlsConfig(p);
  return {
    address: o.address ?? p.address ?? DEFAULT_ADDRESS,
    namespace: o.namespace ?? p.namespace ?? DEFAULT_NAMESPACE,
    ...(tls !== undefined ? { tls } : {}),
    ...(p.apiKey !== undefined ? { apiKey: p.apiKey } : {}),
    ...(p.grpcMeta && Object.keys(p.grpcMeta).length ? { metadata: p.grpcMeta } : {}),
    ...((o.profile ?? env.TEMPORAL_PROFILE) ? { profile: o.profile ?? env.TEMPORAL_PROFILE } : {}),
  };
}

/** The connection options both SDK connections take (no namespace). */
export function connectOptions(s: TemporalConnectionSettings): {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  return {
    address: s.address,
    ...(s.tls !== undefined ? { tls: s.tls } : {}),
    ...(s.apiKey !== undefined ? { apiKey: s.apiKey } : {}),
    ...(s.metadata ? { metadata: s.metadata } : {}),
  };
}

/** For logs and messages: where and how, never a secret. */
export function describeConnection(s: TemporalConnectionSettings): string {
  const how = [
    s.tls && typeof s.tls === 'object' && s.tls.clientCertPair ? 'mTLS' : s.tls ? 'TLS' : 'plaintext',
    ...(s.apiKey !== undefined ? ['API key'] : []),
    ...(s.profile ? [`profile ${s.profile}`] : []),
  ];
  return `${s.address} (namespace ${s.namespace}, ${how.join(', ')})`;
}
