import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import type { Logger } from '../config/logger.js';
import { embeddedInitialised, runningEmbeddedPort, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
import { createKnex } from './knex.js';
import { migrateLatest } from './migrations.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, provisionRoles, urlFor } from './provision.js';
import { createDb, type Db } from './tenant.js';

export const EMBEDDED_DATABASE = 'enamel';

export interface OpenDatabase {
  db: Db;
  /** The runtime role's connection string (the session store opens its own small pool). */
  runtimeUrl: string;
  /** The owner role's (migrations), when known. */
  ownerUrl: string | undefined;
  /** The embedded server's superuser (backups read every practice with it); undefined for an external database. */
  superuserUrl: string | undefined;
  /** Closes the pool, then stops the embedded server if there is one. */
  close(): Promise<void>;
}

interface RoleCredentials {
  owner: string;
  runtime: string;
}

async function loadOrCreateRoleCredentials(file: string): Promise<RoleCredentials> {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as RoleCredentials;
  const creds = { owner: randomBytes(24).toString('hex'), runtime: randomBytes(24).toString('hex') };
  await writeFile(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

/** What the caller (server.ts) adds to the start: the demo seed after migrations, the practice defaults once open. */
export interface OpenHooks {
  /** Runs with the owner role's connection right after the migrations (when they run). */
  afterMigrate?: (owner: Knex) => Promise<void>;
  /** Runs with the runtime role's database before it is handed out. */
  afterOpen?: (db: Db) => Promise<void>;
}

/**
 * Connects the app to its database: the embedded server under DATA_DIR by default, or
 * DATABASE_URL. Runs migrations as the owner role (when configured), then the caller's hooks,
 * checks the runtime role is safe, and returns the runtime role's pool.
 */
export async function openDatabase(config: Config, logger: Logger, hooks: OpenHooks = {}): Promise<OpenDatabase> {
  let embedded: EmbeddedPostgres | undefined;
  let runtimeUrl: string;
  let migrationUrl: string | undefined;

  if (config.database.kind === 'embedded') {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.database.port, portExplicit: config.database.portExplicit, logger });
    try {
      const creds = await loadOrCreateRoleCredentials(path.join(config.dataDir, 'pg-roles.json'));
      const superuserUrl = embedded.superuserUrl();
      await provisionRoles(superuserUrl, creds);
      await createDatabase(superuserUrl, EMBEDDED_DATABASE);
      runtimeUrl = urlFor(superuserUrl, RUNTIME_ROLE, creds.runtime, EMBEDDED_DATABASE);
      migrationUrl = urlFor(superuserUrl, OWNER_ROLE, creds.owner, EMBEDDED_DATABASE);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
  } else {
    runtimeUrl = config.database.runtimeUrl;
    migrationUrl = config.database.migrationUrl;
  }

  const knex = createKnex(runtimeUrl, { poolMax: config.poolMax, applicationName: 'enamel' });
  const close = async (): Promise<void> => {
    await knex.destroy();
    await embedded?.stop();
  };
  try {
    if (config.migrateOnStart && migrationUrl) {
      const owner = createKnex(migrationUrl, { poolMax: 2, applicationName: 'enamel-migrate' });
      try {
        const applied = await migrateLatest(owner);
        logger.info({ count: applied.length }, applied.length ? 'migrations applied' : 'migrations current');
        await hooks.afterMigrate?.(owner);
      } finally {
        await owner.destroy();
      }
    } else if (config.migrateOnStart) {
      logger.warn('MIGRATION_DATABASE_URL is not set: migrations were not run (run `enamel migrate` as the owner role)');
    }
    await checkRuntimeRole(knex, config, logger);
    await hooks.afterOpen?.(createDb(knex));
  } catch (err) {
    await close();
    throw err;
  }
  return { db: createDb(knex), runtimeUrl, ownerUrl: migrationUrl, superuserUrl: embedded?.superuserUrl(), close };
}

/** The connection strings of an embedded database, for the operator's command line. */
export interface EmbeddedConnection {
  runtimeUrl: string;
  ownerUrl: string;
  /** The embedded server's superuser, on the postgres database. */
  superuserUrl: string;
  /** Whether this command started the server (then `close` stops it again). */
  started: boolean;
  close(): Promise<void>;
}

/**
 * The embedded database for a CLI command with no DATABASE_URL: the server `npm start` is running
 * on the same DATA_DIR (found by its postmaster.pid), or — when none is — started for the command
 * and stopped again by `close`. It never creates one: without a database under DATA_DIR it says to
 * run `npm start` first.
 */
export async function embeddedForCli(config: Config, logger: Logger): Promise<EmbeddedConnection> {
  if (config.database.kind !== 'embedded') throw new Error('embeddedForCli: DATABASE_URL is set');
  const rolesFile = path.join(config.dataDir, 'pg-roles.json');
  if (!embeddedInitialised(config.dataDir) || !existsSync(rolesFile)) {
    throw new Error(`There is no evaluation database under ${config.dataDir} yet: run \`npm start\` once (or set DATABASE_URL to your PostgreSQL server).`);
  }
  const roles = JSON.parse(await readFile(rolesFile, 'utf8')) as RoleCredentials;
  const superuser = JSON.parse(await readFile(path.join(config.dataDir, 'pg-superuser.json'), 'utf8')) as { superuserPassword: string };
  const running = await runningEmbeddedPort(config.dataDir);
  let embedded: EmbeddedPostgres | undefined;
  const port = running ?? (embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.database.port, portExplicit: config.database.portExplicit, logger })).port;
  const superuserUrl = `postgres://postgres:${encodeURIComponent(superuser.superuserPassword)}@127.0.0.1:${port}/postgres`;
  return {
    runtimeUrl: urlFor(superuserUrl, RUNTIME_ROLE, roles.runtime, EMBEDDED_DATABASE),
    ownerUrl: urlFor(superuserUrl, OWNER_ROLE, roles.owner, EMBEDDED_DATABASE),
    superuserUrl,
    started: embedded !== undefined,
    close: async () => {
      await embedded?.stop();
    },
  };
}

/**
 * SECURITY: the runtime role must be bound by row-level security and own nothing, or RLS and the
 * audit log's grants mean nothing. Production refuses to start; development warns.
 */
export async function runtimeRoleProblems(knex: Knex): Promise<string[]> {
  const role = await knex.raw<{ rows: { rolsuper: boolean; rolbypassrls: boolean; owned: number }[] }>(
    `SELECT r.rolsuper, r.rolbypassrls,
            (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owned
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const r = role.rows[0];
  if (!r) return ['the runtime role could not be inspected'];
  const problems: string[] = [];
  if (r.rolsuper) problems.push('the DATABASE_URL role is a superuser');
  if (r.rolbypassrls) problems.push('the DATABASE_URL role has BYPASSRLS');
  if (r.owned > 0) problems.push(`the DATABASE_URL role owns ${r.owned} relations in the schema (it must own nothing)`);
  return problems;
}

async function checkRuntimeRole(knex: Knex, config: Config, logger: Logger): Promise<void> {
  const problems = await runtimeRoleProblems(knex);
  if (problems.length === 0) return;
  const message = `Unsafe DATABASE_URL role: ${problems.join('; ')}. Connect as the runtime role ${RUNTIME_ROLE} (README "Database roles").`;
  if (config.isProduction) throw new Error(message);
  logger.warn(message);
}
