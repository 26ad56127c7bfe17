import pg from 'pg';

/**
 * Creates the two database roles and the database, as a superuser. Used for the embedded default
 * and by the test suite; an administrator does the same by hand for an external server
 * (deploy/postgres-init/01-roles.sql, README "Production deployment").
 *
 * - OWNER_ROLE owns the schema and runs migrations.
 * - RUNTIME_ROLE is what the app connects as: no superuser, no BYPASSRLS, owns nothing; migrations
 *   grant it exactly the table rights it needs.
 *
 * NOTE: role and database DDL cannot take bind parameters; names are fixed constants or checked
 * against a strict pattern, and passwords go through pg's escapeLiteral.
 */
export const OWNER_ROLE = 'enamel_owner';
export const RUNTIME_ROLE = 'enamel_app';

const SAFE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function assertSafeName(name: string): string {
  if (!SAFE_NAME.test(name)) throw new Error(`unsafe database identifier: ${name}`);
  return name;
}

async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates (or updates the passwords of) both roles. Idempotent. */
export async function provisionRoles(superuserUrl: string, passwords: { owner: string; runtime: string }): Promise<void> {
  await withClient(superuserUrl, async (c) => {
    for (const [role, password] of [
      [OWNER_ROLE, passwords.owner],
      [RUNTIME_ROLE, passwords.runtime],
    ] as const) {
      const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      const verb = exists.rowCount ? 'ALTER' : 'CREATE';
      await c.query(
        `${verb} ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${c.escapeLiteral(password)}`,
      );
    }
  });
}

/**
 * Creates `database` owned by the owner role (optionally from a template) and locks it down:
 * nobody but the owner may create objects; the runtime role may connect and use the schema.
 * Returns false when it already existed.
 */
export async function createDatabase(superuserUrl: string, database: string, template?: string): Promise<boolean> {
  const db = assertSafeName(database);
  const created = await withClient(superuserUrl, async (c) => {
    const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
    if (exists.rowCount) return false;
    const from = template ? ` TEMPLATE ${assertSafeName(template)}` : '';
    await c.query(`CREATE DATABASE ${db} OWNER ${OWNER_ROLE}${from} ENCODING 'UTF8'`);
    await c.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${RUNTIME_ROLE}`);
    return true;
  });
  // NOTE: a clone carries its template's schema privileges; only a new database needs them set.
  if (created && !template) await lockDownSchema(onDatabase(superuserUrl, db));
  return created;
}

async function lockDownSchema(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (c) => {
    await c.query(`ALTER SCHEMA public OWNER TO ${OWNER_ROLE}`);
    await c.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    await c.query(`GRANT USAGE ON SCHEMA public TO ${RUNTIME_ROLE}`);
  });
}

/** Drops a database, ending its connections first (tests). */
export async function dropDatabase(superuserUrl: string, database: string): Promise<void> {
  const db = assertSafeName(database);
  await withClient(superuserUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
}

/** The same server URL and role, on another database. */
export function onDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The same server URL with another role, password and database. */
export function urlFor(serverUrl: string, role: string, password: string, database: string): string {
  const u = new URL(serverUrl);
  u.username = role;
  u.password = password;
  u.pathname = `/${database}`;
  return u.toString();
}
