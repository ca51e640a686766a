// The raw SQLite handle behind a Store, for tests and the benchmark: plant rows the API cannot
// write (legacy shapes, junk, backdated clocks) and read tables it does not expose.
import type Database from 'better-sqlite3';
import { rawHandleForTests } from '../../src/store/raw';
import type { Store } from '../../src/store/store';

export function rawDb(store: Store): Database.Database {
  return rawHandleForTests(store);
}
