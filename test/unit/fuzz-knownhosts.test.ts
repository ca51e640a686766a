/**
 * Property tests for host key checking (src/shell/knownhosts.ts), the check ssh2's hostVerifier
 * runs for every SSH node that has not opted out. Every property runs 10,000 times.
 *
 * The oracle is written independently: OpenSSH host names (`host` on port 22, `[host]:port`
 * otherwise), `*` / `?` globs by a recursive matcher, `!pattern` negation, hashed `|1|salt|hmac`
 * entries, and `@revoked` winning over any trusting line.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { hostKeyMatches, parseKnownHosts, type KnownHostEntry } from '../../src/shell/knownhosts';

const RUNS = { numRuns: 10_000 };

function sshName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `*` any run of characters, `?` exactly one, everything else literally. */
function glob(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') return glob(p.slice(1), s) || (s !== '' && glob(p, s.slice(1)));
  if (s === '') return false;
  return (p[0] === '?' || p[0] === s[0]) && glob(p.slice(1), s.slice(1));
}

function hashedPattern(name: string, salt: Uint8Array): string {
  const b = Buffer.from(salt);
  return `|1|${b.toString('base64')}|${createHmac('sha1', b).update(name).digest('base64')}`;
}

function patternMatches(p: string, name: string): boolean {
  if (p.startsWith('|1|')) {
    const [, , salt, hash] = p.split('|');
    return !!salt && !!hash && createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return glob(p, name);
}

function applies(patterns: string[], name: string): boolean {
  if (patterns.some((p) => p.startsWith('!') && patternMatches(p.slice(1), name))) return false;
  return patterns.some((p) => !p.startsWith('!') && patternMatches(p, name));
}

/** Accept iff some applicable, non-revoked entry has the key, and no applicable revoked entry has it. */
function oracle(entries: KnownHostEntry[], host: string, port: number, key: Buffer): boolean {
  const name = sshName(host, port);
  const b64 = key.toString('base64');
  const mine = entries.filter((e) => applies(e.patterns, name) && e.keyBase64 === b64);
  return mine.length > 0 && !mine.some((e) => e.revoked);
}

// ---- generators: hosts and patterns from an alphabet with regex specials in it ----

const hostChar = fc.constantFrom('a', 'b', 'c', '1', '.', '-', ':', '[', ']', '+', '(', '$', '^', '\\');
const host = fc.string({ unit: hostChar, minLength: 1, maxLength: 8 });
const port = fc.oneof(fc.constant(22), fc.constant(2222), fc.integer({ min: 1, max: 65535 }));
const keyBytes = fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a));
const keys = fc.array(keyBytes, { minLength: 1, maxLength: 3 });

/** A pattern aimed at this host/port: exact, hashed, globbed, or unrelated; maybe negated. */
function patternFor(h: string, p: number): fc.Arbitrary<string> {
  const name = sshName(h, p);
  const base = fc.oneof(
    fc.constant(name),
    fc.constant(h),
    fc.constant(`[${h}]:${p}`),
    fc.uint8Array({ minLength: 1, maxLength: 20 }).map((salt) => hashedPattern(name, salt)),
    fc.tuple(host, port, fc.uint8Array({ minLength: 1, maxLength: 20 })).map(([h2, p2, salt]) => hashedPattern(sshName(h2, p2), salt)),
    fc.constantFrom('*', '?', '*.*', '[*]:*', `*${h.slice(-1)}`, `${h.slice(0, 1)}*`, `${h.slice(0, 1)}?${h.slice(2)}`),
    fc.string({ unit: fc.oneof(hostChar, fc.constantFrom('*', '?')), minLength: 1, maxLength: 6 }),
    host,
    fc.constantFrom('|1|', '|1|x', '|1||', '|2|abc|def', ''),
  );
  return fc.tuple(fc.boolean(), base).map(([neg, pat]) => (neg && pat !== '' ? `!${pat}` : pat));
}

const scenario = fc.tuple(host, port, keys).chain(([h, p, ks]) =>
  fc.record({
    host: fc.constant(h),
    port: fc.constant(p),
    keys: fc.constant(ks),
    entries: fc.array(
      fc.record({
        patterns: fc.array(patternFor(h, p), { minLength: 1, maxLength: 3 }),
        key: fc.constantFrom(...ks),
        revoked: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        cert: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      }),
      { maxLength: 5 },
    ),
    offered: fc.oneof(fc.constantFrom(...ks), keyBytes),
  }),
);

function toText(entries: { patterns: string[]; key: Buffer; revoked: boolean; cert: boolean }[]): string {
  return entries
    .map(
      (e) =>
        `${e.cert ? '@cert-authority ' : e.revoked ? '@revoked ' : ''}${e.patterns.filter((x) => x !== '').join(',') || 'nohost'} ssh-ed25519 ${e.key.toString('base64')}`,
    )
    .join('\n');
}

describe('fuzz: known_hosts host key checking', () => {
  test('parseKnownHosts never throws on arbitrary text; an added @cert-authority line adds no entry and an added @revoked line adds one revoked entry', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        '@cert-authority * ssh-ed25519 AAAA',
        '@revoked * ssh-ed25519 AAAA',
        '@other h k b',
        '# c',
        '',
        '   ',
        'h ssh-ed25519',
        'h\tssh-ed25519\tAAAA',
      ),
    );
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.array(line, { maxLength: 6 }).map((l) => l.join('\n')),
    );
    fc.assert(
      fc.property(text, keyBytes, (t, key) => {
        const b64 = key.toString('base64');
        const base = parseKnownHosts(t);
        for (const e of base) assert.ok(e.patterns.length >= 1 && e.keyType !== '' && e.keyBase64 !== '');
        const withCa = parseKnownHosts(`${t}\n@cert-authority * ssh-ed25519 ${b64}`);
        assert.deepEqual(withCa, base, 'a CA line is dropped, never trusted');
        const withRevoked = parseKnownHosts(`${t}\n@revoked * ssh-ed25519 ${b64}`);
        assert.equal(withRevoked.length, base.length + 1);
        assert.deepEqual(withRevoked.at(-1), { patterns: ['*'], keyType: 'ssh-ed25519', keyBase64: b64, revoked: true });
        assert.equal(hostKeyMatches(withRevoked, 'anyhost', 22, key), false);
      }),
      RUNS,
    );
  });

  test('hostKeyMatches accepts exactly when an applicable non-revoked line has the offered key, with plain, [host]:port, hashed, wildcard and negated patterns', () => {
    let accepted = 0;
    fc.assert(
      fc.property(scenario, (s) => {
        const entries = parseKnownHosts(toText(s.entries));
        const got = hostKeyMatches(entries, s.host, s.port, s.offered);
        assert.equal(got, oracle(entries, s.host, s.port, s.offered), `${toText(s.entries)}\n-> ${sshName(s.host, s.port)}`);
        if (got) accepted++;
      }),
      RUNS,
    );
    assert.ok(accepted > 500, `only ${accepted} accepted`);
  });

  test('a key on an applicable @revoked line is refused whatever other lines say, in any order', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, at) => {
        const revoked = { patterns: [sshName(s.host, s.port)], key: s.offered, revoked: true, cert: false };
        const list = [...s.entries];
        list.splice(at % (list.length + 1), 0, revoked);
        assert.equal(hostKeyMatches(parseKnownHosts(toText(list)), s.host, s.port, s.offered), false);
      }),
      RUNS,
    );
  });

  test('a negated pattern that matches the host makes its line never apply, even next to "*"', () => {
    fc.assert(
      fc.property(host, port, keyBytes, fc.boolean(), (h, p, key, hashedNeg) => {
        const name = sshName(h, p);
        const neg = hashedNeg ? `!${hashedPattern(name, Buffer.from('salt'))}` : `!${name}`;
        const text = `*,${neg} ssh-ed25519 ${key.toString('base64')}`;
        assert.equal(hostKeyMatches(parseKnownHosts(text), h, p, key), false);
      }),
      RUNS,
    );
  });

  test('a line for host on port 22 never vouches for the same host on another port, and [host]:port never for another port', () => {
    fc.assert(
      fc.property(
        host,
        fc.integer({ min: 1, max: 65535 }).filter((p) => p !== 22),
        keyBytes,
        (h, p, key) => {
          const b64 = key.toString('base64');
          assert.equal(hostKeyMatches(parseKnownHosts(`${h} ssh-ed25519 ${b64}`), h, p, key), false);
          const q = p === 65535 ? 1 : p + 1;
          assert.equal(hostKeyMatches(parseKnownHosts(`[${h}]:${q} ssh-ed25519 ${b64}`), h, p, key), false);
          assert.equal(hostKeyMatches(parseKnownHosts(`[${h}]:${p} ssh-ed25519 ${b64}`), h, p, key), true);
        },
      ),
      RUNS,
    );
  });

  test('no entry ever vouches for a key it does not list', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const listed = new Set(s.entries.filter((e) => !e.cert).map((e) => e.key.toString('base64')));
        if (listed.has(s.offered.toString('base64'))) return;
        assert.equal(hostKeyMatches(parseKnownHosts(toText(s.entries)), s.host, s.port, s.offered), false);
      }),
      RUNS,
    );
  });
});
