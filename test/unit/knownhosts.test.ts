import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { hostKeyMatches, parseKnownHosts } from '../../src/shell/knownhosts';

const KEY = randomBytes(51);
const OTHER_KEY = randomBytes(51);
const B64 = KEY.toString('base64');

/** An OpenSSH hashed host pattern: |1|base64(salt)|base64(HMAC-SHA1(salt, name)). */
function hashed(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

function accepts(text: string, host: string, port: number, key = KEY): boolean {
  return hostKeyMatches(parseKnownHosts(text), host, port, key);
}

describe('parseKnownHosts', () => {
  test('reads patterns, key type and key, skipping comments and blank lines', () => {
    const entries = parseKnownHosts(`# comment\n\n  [127.0.0.1]:2222,node1 ssh-ed25519 ${B64} user@host\n`);
    assert.deepEqual(entries, [{ patterns: ['[127.0.0.1]:2222', 'node1'], keyType: 'ssh-ed25519', keyBase64: B64, revoked: false }]);
  });

  test('marks @revoked lines and drops @cert-authority lines', () => {
    const entries = parseKnownHosts(`@revoked host1 ssh-ed25519 ${B64}\n@cert-authority *.example ssh-ed25519 ${B64}\n`);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.revoked, true);
    assert.deepEqual(entries[0]!.patterns, ['host1']);
  });

  test('drops lines with too few fields', () => {
    assert.deepEqual(parseKnownHosts('host1 ssh-ed25519\nhost2\n'), []);
  });
});

describe('hostKeyMatches', () => {
  test('accepts a plain [host]:port entry with the same key', () => {
    assert.equal(accepts(`[127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.1', 2222), true);
  });

  test('refuses a [host]:port entry for another port', () => {
    assert.equal(accepts(`[127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.1', 2223), false);
    assert.equal(accepts(`[127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.1', 22), false);
  });

  test('accepts a bare host name on port 22', () => {
    assert.equal(accepts(`node1.example ssh-ed25519 ${B64}`, 'node1.example', 22), true);
  });

  test('refuses a bare host name entry for a non-standard port', () => {
    assert.equal(accepts(`node1.example ssh-ed25519 ${B64}`, 'node1.example', 2222), false);
  });

  test('accepts any pattern of a comma list', () => {
    assert.equal(accepts(`node1,10.0.0.5,[10.0.0.5]:2222 ssh-ed25519 ${B64}`, '10.0.0.5', 22), true);
    assert.equal(accepts(`node1,10.0.0.5,[10.0.0.5]:2222 ssh-ed25519 ${B64}`, '10.0.0.5', 2222), true);
  });

  test('accepts a hashed entry for [host]:port', () => {
    assert.equal(accepts(`${hashed('[127.0.0.1]:2222')} ssh-ed25519 ${B64}`, '127.0.0.1', 2222), true);
  });

  test('accepts a hashed entry for a host on port 22', () => {
    assert.equal(accepts(`${hashed('node1.example')} ssh-ed25519 ${B64}`, 'node1.example', 22), true);
  });

  test('refuses a hashed entry for another host or port', () => {
    const line = `${hashed('[127.0.0.1]:2222')} ssh-ed25519 ${B64}`;
    assert.equal(accepts(line, '127.0.0.2', 2222), false);
    assert.equal(accepts(line, '127.0.0.1', 22), false);
  });

  test('refuses a malformed hashed entry', () => {
    assert.equal(accepts(`|1|onlysalt ssh-ed25519 ${B64}`, '127.0.0.1', 22), false);
  });

  test('refuses the wrong key for a known host', () => {
    assert.equal(accepts(`[127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.1', 2222, OTHER_KEY), false);
  });

  test('refuses a host that has no entry', () => {
    assert.equal(accepts(`[127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.2', 2222), false);
    assert.equal(accepts('', '127.0.0.1', 2222), false);
  });

  test('refuses a @revoked key even when another line trusts it, in either order', () => {
    const trust = `[127.0.0.1]:2222 ssh-ed25519 ${B64}`;
    const revoke = `@revoked [127.0.0.1]:2222 ssh-ed25519 ${B64}`;
    assert.equal(accepts(`${trust}\n${revoke}`, '127.0.0.1', 2222), false);
    assert.equal(accepts(`${revoke}\n${trust}`, '127.0.0.1', 2222), false);
  });

  test('still accepts a trusted key when a different key is revoked', () => {
    const text = `[127.0.0.1]:2222 ssh-ed25519 ${B64}\n@revoked [127.0.0.1]:2222 ssh-ed25519 ${OTHER_KEY.toString('base64')}`;
    assert.equal(accepts(text, '127.0.0.1', 2222), true);
  });

  test('never trusts a key through a @cert-authority line', () => {
    assert.equal(accepts(`@cert-authority [127.0.0.1]:2222 ssh-ed25519 ${B64}`, '127.0.0.1', 2222), false);
  });
});
