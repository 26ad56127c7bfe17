import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { codeExtension, migrationsDir } from '../config/paths.js';

/**
 * Migrations are named without their extension, so a database migrated from the TypeScript
 * sources (tsx) and later run from the compiled dist/ (or the other way round) agree on what ran.
 */
class MigrationSource implements Knex.MigrationSource<string> {
  constructor(
    private readonly dir: string,
    private readonly ext: string,
  ) {}

  async getMigrations(): Promise<string[]> {
    const files = await readdir(this.dir);
    return files
      .filter((f) => f.endsWith(this.ext) && !f.endsWith(`.d${this.ext}`) && /^\d{14}_[a-z0-9_]+\./.test(f))
      .map((f) => f.slice(0, -this.ext.length))
      .sort();
  }

  getMigrationName(name: string): string {
    return name;
  }

  async getMigration(name: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(this.dir, name + this.ext)).href)) as Knex.Migration;
  }
}

export const MIGRATIONS_TABLE = 'knex_migrations';

export function migratorConfig(): Knex.MigratorConfig {
  return { migrationSource: new MigrationSource(migrationsDir, codeExtension), tableName: MIGRATIONS_TABLE };
}

/** Names of every migration this build ships, in order. */
export function expectedMigrations(): Promise<string[]> {
  return new MigrationSource(migrationsDir, codeExtension).getMigrations();
}

/** Applies pending migrations as the owner role. Returns the names applied. */
export async function migrateLatest(owner: Knex): Promise<string[]> {
  const [, applied] = (await owner.migrate.latest(migratorConfig())) as [number, string[]];
  return applied;
}

/** Rolls back every migration (tests and `enamel migrate rollback --all`). */
export async function rollbackAll(owner: Knex): Promise<string[]> {
  const [, rolledBack] = (await owner.migrate.rollback(migratorConfig(), true)) as [number, string[]];
  return rolledBack;
}

/**
 * Migrations this build ships that the database has not applied (empty = current). Runs as the
 * runtime role, which may only SELECT the migrations table.
 */
export async function pendingMigrations(db: Knex): Promise<string[]> {
  const expected = await expectedMigrations();
  const exists = await db.raw<{ rows: { t: string | null }[] }>('SELECT to_regclass(?) AS t', [MIGRATIONS_TABLE]);
  // CASE: a database nobody has migrated yet has no migrations table: everything is pending.
  if (!exists.rows[0]?.t) return expected;
  const rows = await db.select('name').from(MIGRATIONS_TABLE);
  const done = new Set(rows.map((r: { name: string }) => r.name));
  return expected.filter((name) => !done.has(name));
}
