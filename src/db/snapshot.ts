import type { Readable, Writable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

/**
 * The database half of a backup (src/backup/): a consistent snapshot of every table, read with
 * `COPY … TO STDOUT` in one REPEATABLE READ READ ONLY transaction, and written back with
 * `COPY … FROM STDIN` in one transaction. SQL lives here by design (like db/tenant.ts): table names
 * come from the catalogue, never from input, and are quoted as identifiers.
 *
 * Reading every practice's rows needs a role that row-level security does not filter (the embedded
 * server's superuser, or a role with BYPASSRLS — `BACKUP_DATABASE_URL`); writing them needs the
 * schema owner, which lifts FORCE ROW LEVEL SECURITY and the tables' own triggers for the length of
 * the restore transaction only (ALTER TABLE is transactional: nobody ever sees them lifted).
 */

/** Not backed up: sign-in sessions and throttles (restoring them would revive old sign-ins), and knex's own tables (the restore migrates). */
export const NOT_BACKED_UP: ReadonlySet<string> = new Set(['http_sessions', 'throttle_counters', 'knex_migrations', 'knex_migrations_lock']);

const quote = (table: string): string => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new TypeError(`unexpected table name ${table}`);
  return `"${table}"`;
};

/** The tables a backup holds, parents before children (foreign keys), then by name. */
export async function backupTables(client: pg.ClientBase): Promise<string[]> {
  const tables = (
    await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1`,
    )
  ).rows.map((r) => r.name).filter((t) => !NOT_BACKED_UP.has(t));
  const edges = (
    await client.query<{ child: string; parent: string }>(
      `SELECT DISTINCT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
         FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND c.conrelid <> c.confrelid`,
    )
  ).rows;
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < tables.length) {
    const next = tables.filter((t) => !placed.has(t) && edges.every((e) => e.child !== t || placed.has(e.parent) || !tables.includes(e.parent)));
    if (next.length === 0) throw new Error(`foreign keys form a cycle among ${tables.filter((t) => !placed.has(t)).join(', ')}`);
    for (const t of next) {
      ordered.push(t);
      placed.add(t);
    }
  }
  return ordered;
}

/** The migrations the database has applied, in order (the backup's schema version). */
export async function appliedMigrations(client: pg.ClientBase): Promise<string[]> {
  return (await client.query<{ name: string }>('SELECT name FROM knex_migrations ORDER BY id')).rows.map((r) => r.name);
}

/** Each audit chain's last sealed event: the manifest records it and the restore checks it. */
export async function chainHeads(client: pg.ClientBase): Promise<{ practiceId: string; seq: string; hash: string }[]> {
  const r = await client.query<{ practice_id: string; seq: string; hash: Buffer }>(
    `SELECT DISTINCT ON (practice_id) practice_id, seq::text AS seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY practice_id, seq DESC`,
  );
  return r.rows.map((x) => ({ practiceId: x.practice_id, seq: x.seq, hash: x.hash.toString('hex') }));
}

/** Opens the snapshot: every read after this sees the database as of this instant. */
export async function beginSnapshot(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const r = await client.query<{ bypass: boolean }>('SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user');
  if (!r.rows[0]?.bypass) {
    await client.query('ROLLBACK');
    throw new SnapshotRoleError();
  }
}

export class SnapshotRoleError extends Error {
  constructor() {
    super('the backup connection is filtered by row-level security and would miss every practice’s rows: use a role with BYPASSRLS (BACKUP_DATABASE_URL; see docs/BACKUP.md)');
    this.name = 'SnapshotRoleError';
  }
}

/** The snapshot's id, for pg_dump --snapshot (the transaction must stay open while pg_dump reads). */
export async function exportSnapshot(client: pg.ClientBase): Promise<string> {
  return (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
}

export async function tableRows(client: pg.ClientBase, table: string): Promise<number> {
  return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`)).rows[0]!.n);
}

/** The server's major version (pg_dump refuses a server newer than itself). */
export async function serverMajor(client: pg.ClientBase): Promise<number> {
  return Math.floor(Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000);
}

/** The object names of the stored files in the snapshot (the files the backup must hold). */
export async function storedObjectNames(client: pg.ClientBase): Promise<string[]> {
  return (await client.query<{ object_name: string }>('SELECT object_name FROM stored_files ORDER BY object_name')).rows.map((r) => r.object_name);
}

/** A table's rows in COPY text format (one line per row). */
export function copyOut(client: pg.ClientBase, table: string): Readable {
  return client.query(copyTo(`COPY ${quote(table)} TO STDOUT`));
}

/**
 * Whether the database already holds data a restore would overwrite: any row in a backed-up table
 * beyond what the migrations themselves insert (the installation's own practice row and its settings).
 */
export async function holdsData(client: pg.ClientBase, tables: readonly string[]): Promise<string | undefined> {
  for (const t of tables) {
    const sql =
      t === 'practices'
        ? `SELECT 1 FROM practices WHERE id <> '00000000-0000-0000-0000-000000000000' LIMIT 1`
        : t === 'practice_settings'
          ? `SELECT 1 FROM practice_settings WHERE practice_id <> '00000000-0000-0000-0000-000000000000' LIMIT 1`
          : `SELECT 1 FROM ${quote(t)} LIMIT 1`;
    if ((await client.query(sql)).rowCount) return t;
  }
  return undefined;
}

/**
 * Begins the restore transaction as the schema owner: empties the tables (the migrations' own
 * rows come back from the backup), lifts FORCE ROW LEVEL SECURITY and user triggers (the guards
 * that refuse changing signed records would refuse loading them too) until `finishRestore`.
 */
export async function beginRestore(client: pg.ClientBase, tables: readonly string[]): Promise<{ forced: string[] }> {
  await client.query('BEGIN');
  const forced = (
    await client.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relforcerowsecurity AND relname = ANY($1)`, [tables])
  ).rows.map((r) => r.name);
  for (const t of tables) await client.query(`ALTER TABLE ${quote(t)} DISABLE TRIGGER USER`);
  for (const t of forced) await client.query(`ALTER TABLE ${quote(t)} NO FORCE ROW LEVEL SECURITY`);
  await client.query(`TRUNCATE ${tables.map(quote).join(', ')}`);
  return { forced };
}

/** A writable for a table's rows in COPY text format. */
export function copyIn(client: pg.ClientBase, table: string): Writable {
  return client.query(copyFrom(`COPY ${quote(table)} FROM STDIN`));
}

/** Puts the guards back, moves identity sequences past the restored ids, and commits. */
export async function finishRestore(client: pg.ClientBase, tables: readonly string[], state: { forced: string[] }): Promise<void> {
  for (const t of tables) await client.query(`ALTER TABLE ${quote(t)} ENABLE TRIGGER USER`);
  for (const t of state.forced) await client.query(`ALTER TABLE ${quote(t)} FORCE ROW LEVEL SECURITY`);
  const identities = (
    await client.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND is_identity = 'YES' AND table_name = ANY($1)`,
      [tables],
    )
  ).rows;
  for (const c of identities) {
    await client.query(`SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(1, (SELECT max(${quote(c.column_name)}) FROM ${quote(c.table_name)})), (SELECT count(*) > 0 FROM ${quote(c.table_name)}))`, [
      c.table_name,
      c.column_name,
    ]);
  }
  await client.query('COMMIT');
}

/**
 * Every table's row count as the owner, which FORCE ROW LEVEL SECURITY filters: lifted inside a
 * transaction that is rolled back (nobody ever sees it lifted), for a restore's count check.
 */
export async function countRestored(client: pg.ClientBase, tables: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  await client.query('BEGIN');
  try {
    for (const t of tables) {
      await client.query(`ALTER TABLE ${quote(t)} NO FORCE ROW LEVEL SECURITY`);
      counts.set(t, Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(t)}`)).rows[0]!.n));
    }
  } finally {
    await client.query('ROLLBACK');
  }
  return counts;
}

/** A pg client for snapshot work (COPY streams need a plain client, not the pool). */
export async function snapshotClient(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  return client;
}
