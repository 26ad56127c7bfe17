import type { Knex } from 'knex';
import { scanForPhi } from './phi-scan.js';
import { createKnex } from '../../src/db/knex.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, dropDatabase, urlFor } from '../../src/db/provision.js';
import type { Store } from 'express-session';
import { createSessionStore } from '../../src/auth/session.js';
import { createDb, type Db } from '../../src/db/tenant.js';
import { testCluster } from './cluster.js';

export interface TestDatabase {
  name: string;
  ownerUrl: string;
  runtimeUrl: string;
  /** Owner role: migrations, seeds, factories. */
  owner: Knex;
  /** Runtime role: what the app uses. */
  app: Knex;
  db: Db;
  /** The session store on this database (created on first use, closed with the database). */
  sessionStore(): Store;
}

// NOTE: on globalThis, not in module state: a test file that imports this module dynamically gets a
// second instance, whose own counter would name an existing database (and createDatabase keeps it).
const COUNTER = Symbol.for('enamel.test.databases');
const counters = globalThis as unknown as { [COUNTER]?: number };
const nextNumber = (): number => (counters[COUNTER] = (counters[COUNTER] ?? 0) + 1);

/** Creates a fresh database for one test file: a clone of the migrated template, or empty. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const c = testCluster();
  const name = `${c.prefix}_${nextNumber()}`;
  if (!(await createDatabase(c.superuserUrl, name, options.migrated === false ? undefined : c.template))) throw new Error(`test database ${name} already exists`);
  const ownerUrl = urlFor(c.superuserUrl, OWNER_ROLE, c.passwords.owner, name);
  const runtimeUrl = urlFor(c.superuserUrl, RUNTIME_ROLE, c.passwords.runtime, name);
  const owner = createKnex(ownerUrl, { poolMax: 2 });
  const app = createKnex(runtimeUrl, { poolMax: 4 });
  let store: Store | undefined;
  return {
    name,
    ownerUrl,
    runtimeUrl,
    owner,
    app,
    db: createDb(app),
    // NOTE: every test app adds its session middleware's listeners to the one store of the file.
    sessionStore: () => (store ??= createSessionStore(runtimeUrl, app, { prune: false }).setMaxListeners(200) as Store),
    closeStore: async () => {
      if (store) await (store as unknown as { close(): Promise<void> }).close();
    },
  } as TestDatabase & { closeStore(): Promise<void> };
}

export async function destroyTestDatabase(t: TestDatabase): Promise<void> {
  await (t as TestDatabase & { closeStore(): Promise<void> }).closeStore();
  await Promise.all([t.owner.destroy(), t.app.destroy()]);
  await dropDatabase(testCluster().superuserUrl, t.name);
}

/**
 * Registers before/after hooks giving the enclosing describe block its own database.
 * Use as `const t = useTestDatabase();` then `t.current.db` inside tests.
 */
export function useTestDatabase(options: { migrated?: boolean } = {}): { current: TestDatabase } {
  const holder = {} as { current: TestDatabase };
  before(async () => {
    holder.current = await createTestDatabase(options);
  });
  after(async () => {
    if (!holder.current) return;
    // SECURITY: no fake patient value may appear in an audit row or a log line (URLs included).
    const problems = await scanForPhi(holder.current.owner);
    await destroyTestDatabase(holder.current);
    if (problems.length) throw new Error(`PHI found in ${[...new Set(problems)].slice(0, 10).join('; ')}`);
  });
  return holder;
}
