/**
 * For tests and the benchmark only, through test/helpers/raw-db.ts: the open handle behind a
 * Store, to plant rows the API cannot write (legacy shapes, junk, backdated clocks) and to read
 * tables it does not expose. Production code goes through the Store's methods.
 */
import type Database from 'better-sqlite3';
import type { Store } from './store';

const handles = new WeakMap<Store, Database.Database>();

/** Called by the Store constructor only. */
export function registerRawHandle(store: Store, db: Database.Database): void {
  handles.set(store, db);
}

export function rawHandleForTests(store: Store): Database.Database {
  const db = handles.get(store);
  if (!db) throw new Error('rawHandleForTests: not a Store');
  return db;
}
