/** known_hosts matching for ssh2's hostVerifier: plain, [host]:port and hashed (|1|) entries. */
import { createHmac } from 'node:crypto';

export interface KnownHostEntry {
  patterns: string[];
  keyType: string;
  keyBase64: string;
  revoked: boolean;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let revoked = false;
    if (parts[0]!.startsWith('@')) {
      const marker = parts.shift();
      if (marker === '@cert-authority') continue; // certificates are not supported: never trust by CA
      revoked = marker === '@revoked';
    }
    if (parts.length < 3) continue;
    entries.push({ patterns: parts[0]!.split(','), keyType: parts[1]!, keyBase64: parts[2]!, revoked });
  }
  return entries;
}

function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH host patterns: `*` and `?` wildcards; a plain host also matches its port-22 form. */
function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  return pattern.includes('*') || pattern.includes('?') ? globMatches(pattern, name) : pattern === name;
}

/** An entry applies if a pattern matches and no negated (`!`) pattern does. */
function entryApplies(patterns: string[], name: string): boolean {
  if (patterns.some((p) => p.startsWith('!') && patternMatches(p.slice(1), name))) return false;
  return patterns.some((p) => !p.startsWith('!') && patternMatches(p, name));
}

/** Accepts `key` only if a non-revoked entry for host:port has exactly this key blob. */
export function hostKeyMatches(entries: KnownHostEntry[], host: string, port: number, key: Buffer): boolean {
  const name = hostName(host, port);
  const b64 = key.toString('base64');
  let ok = false;
  for (const e of entries) {
    if (!entryApplies(e.patterns, name)) continue;
    if (e.keyBase64 !== b64) continue;
    if (e.revoked) return false;
    ok = true;
  }
  return ok;
}
