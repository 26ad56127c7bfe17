import type { Config } from '../config/env.js';
import { onDatabase } from '../db/provision.js';

/**
 * Where backups come from and go, resolved from the configuration and the database connections:
 * the embedded database backs up (and drills) with its superuser; an external one needs
 * BACKUP_DATABASE_URL (a role with BYPASSRLS) and RESTORE_DRILL_SERVER_URL (a role that may create
 * and drop databases owned by the schema owner). docs/BACKUP.md.
 */
export interface BackupSettings {
  dir: string;
  /** undefined: pg_dump when a client at least as new as the server is installed, else Enamel's snapshot. */
  method?: 'snapshot' | 'pg_dump';
  keep: number;
  maxAgeDays: number;
  /** A connection to the live database that row-level security does not filter; undefined = not configured. */
  sourceUrl: string | undefined;
  /** How the drill makes, reaches and drops its scratch database; undefined = not configured. */
  drill: DrillServer | undefined;
}

export interface DrillServer {
  /** A role that may CREATE DATABASE … OWNER enamel_owner and DROP it again. */
  adminUrl: string;
  ownerUrl(database: string): string;
  runtimeUrl(database: string): string;
}

export function backupSettings(config: Config, connections: { runtimeUrl: string; ownerUrl: string | undefined; superuserUrl: string | undefined; database?: string }): BackupSettings {
  const { runtimeUrl, ownerUrl, superuserUrl } = connections;
  const database = connections.database ?? new URL(runtimeUrl).pathname.slice(1);
  const adminUrl = superuserUrl ?? config.backup.drillServerUrl;
  return {
    dir: config.backup.dir,
    ...(config.backup.method === 'auto' ? {} : { method: config.backup.method }),
    keep: config.backup.keep,
    maxAgeDays: config.backup.maxAgeDays,
    sourceUrl: superuserUrl ? onDatabase(superuserUrl, database) : config.backup.databaseUrl,
    drill: adminUrl && ownerUrl ? { adminUrl, ownerUrl: (db) => onDatabase(ownerUrl, db), runtimeUrl: (db) => onDatabase(runtimeUrl, db) } : undefined,
  };
}
