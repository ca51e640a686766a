/**
 * Temporal connection settings (src/client/connection.ts): temporal.toml profiles and TEMPORAL_*
 * variables as the temporal CLI reads them, flags on top, certificates checked with one-line
 * errors that name the setting and never echo key material or an API key.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeConnection, resolveConnection } from '../../src/client/connection';
import { UserError } from '../../src/common/errors';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-conn-'));
const key = path.join(dir, 'client.key');
const crt = path.join(dir, 'client.pem');
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'ignore' });
execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', '/CN=t', '-days', '1', '-out', crt], { stdio: 'ignore' });
const junk = path.join(dir, 'junk.pem');
writeFileSync(junk, 'not a certificate\n');

function toml(body: string): Record<string, string> {
  const f = path.join(dir, `t-${Math.random().toString(16).slice(2)}.toml`);
  writeFileSync(f, body);
  return { TEMPORAL_CONFIG_FILE: f };
}

const PROFILE = `
[profile.prod]
address = "temporal.example:7233"
namespace = "prod-ns"
[profile.prod.tls]
client_cert_path = "${crt}"
client_key_path = "${key}"
server_ca_cert_path = "${crt}"
server_name = "temporal.example"
[profile.cloud]
address = "x.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "sekrit-api-key-123"
`;

describe('Temporal connection settings', () => {
  test('nothing configured: localhost:7233, namespace default, plaintext', () => {
    const s = resolveConnection({ env: toml('') });
    assert.equal(s.address, 'localhost:7233');
    assert.equal(s.namespace, 'default');
    assert.equal(s.tls, undefined);
    assert.equal(describeConnection(s), 'localhost:7233 (namespace default, plaintext)');
  });

  test("a profile's address, namespace and mTLS settings are used; --address and --namespace win", () => {
    const env = toml(PROFILE);
    const s = resolveConnection({ profile: 'prod', env });
    assert.equal(s.address, 'temporal.example:7233');
    assert.equal(s.namespace, 'prod-ns');
    assert.ok(s.tls && typeof s.tls === 'object');
    assert.equal(s.tls.serverNameOverride, 'temporal.example');
    assert.deepEqual(s.tls.clientCertPair?.crt, readFileSync(crt));
    assert.equal(describeConnection(s), 'temporal.example:7233 (namespace prod-ns, mTLS, profile prod)');
    const o = resolveConnection({ profile: 'prod', env, address: '127.0.0.1:9', namespace: 'other' });
    assert.equal(o.address, '127.0.0.1:9');
    assert.equal(o.namespace, 'other');
    assert.ok(o.tls, 'TLS settings stay with the profile');
  });

  test('TEMPORAL_PROFILE picks the profile; TEMPORAL_ADDRESS overrides the file', () => {
    const env = { ...toml(PROFILE), TEMPORAL_PROFILE: 'prod', TEMPORAL_ADDRESS: 'env.example:7233' };
    const s = resolveConnection({ env });
    assert.equal(s.address, 'env.example:7233');
    assert.equal(s.namespace, 'prod-ns');
  });

  test('an API key turns TLS on and is never in the description', () => {
    const s = resolveConnection({ profile: 'cloud', env: toml(PROFILE) });
    assert.equal(s.apiKey, 'sekrit-api-key-123');
    assert.equal(s.tls, true);
    assert.doesNotMatch(describeConnection(s), /sekrit/);
    assert.match(describeConnection(s), /TLS, API key/);
  });

  test('TEMPORAL_TLS_* variables work without a file', () => {
    const s = resolveConnection({
      env: { ...toml(''), TEMPORAL_TLS_CLIENT_CERT_PATH: crt, TEMPORAL_TLS_CLIENT_KEY_PATH: key, TEMPORAL_GRPC_META_X_TEAM: 'a' },
    });
    assert.ok(s.tls && typeof s.tls === 'object' && s.tls.clientCertPair);
    assert.deepEqual(s.metadata, { 'x-team': 'a' });
  });

  const refuses = (re: RegExp) => (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /BEGIN|PRIVATE KEY|\n/);
    return true;
  };

  test('a missing certificate file is a one-line error naming the setting', () => {
    const env = { ...toml(''), TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'nope.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: key };
    assert.throws(
      () => resolveConnection({ env }),
      refuses(/tls\.client_cert_path \(TEMPORAL_TLS_CLIENT_CERT_PATH\): cannot read .*nope\.pem \(ENOENT\)/),
    );
  });

  test('a file that is not a certificate, or a certificate given as the key, is refused without echoing it', () => {
    const env1 = { ...toml(''), TEMPORAL_TLS_SERVER_CA_CERT_PATH: junk };
    assert.throws(() => resolveConnection({ env: env1 }), refuses(/tls\.server_ca_cert_path .*junk\.pem is not a PEM certificate/));
    const env2 = { ...toml(''), TEMPORAL_TLS_CLIENT_CERT_PATH: crt, TEMPORAL_TLS_CLIENT_KEY_PATH: crt };
    assert.throws(() => resolveConnection({ env: env2 }), refuses(/tls\.client_key_path .* is not a PEM private key/));
  });

  test('a certificate without its key is refused', () => {
    const env = { ...toml(''), TEMPORAL_TLS_CLIENT_CERT_PATH: crt };
    assert.throws(() => resolveConnection({ env }), refuses(/tls\.client_key_path .* is missing/));
  });

  test('an unknown profile and a broken file are one-line errors', () => {
    assert.throws(() => resolveConnection({ profile: 'nosuch', env: toml(PROFILE) }), refuses(/Profile 'nosuch' not found/));
    assert.throws(() => resolveConnection({ env: toml('[profile.x\naddress = ') }), refuses(/Temporal connection config/));
  });
});
