import type { Knex } from 'knex';
import { pipeline } from 'node:stream/promises';
import { verifyPractice } from '../audit/verify.js';
import { encryptedTables, PracticeCrypto } from '../crypto/encrypted-columns.js';
import { KeyDestroyedError } from '../crypto/errors.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import { Keyring } from '../crypto/keyring.js';
import { createKnex } from '../db/knex.js';
import { expectedMigrations, migrateLatest, migratorConfig } from '../db/migrations.js';
import { beginRestore, copyIn, countRestored, finishRestore, holdsData, NOT_BACKED_UP, snapshotClient } from '../db/snapshot.js';
import { pgRestore } from './pg-tools.js';
import { createDb, INSTALLATION_ID } from '../db/tenant.js';
import { chainHashAt, practiceIdsToSample, sampleRows } from '../queries/backup.queries.js';
import '../queries/encrypted-tables.js';
import type { FileStore } from '../storage/file-store.js';
import { openVerifiedBackup, RowCounter, type Progress } from './backup.js';
import type { Manifest } from './archive.js';

/** Where a restore goes: an empty database (owner and runtime roles) and an empty file store. */
export interface RestoreTarget {
  ownerUrl: string;
  runtimeUrl: string;
  files: FileStore;
}

export interface RestoreReport {
  manifest: Manifest;
  tables: number;
  rows: number;
  files: number;
  chains: { practiceId: string; events: number }[];
  /** Encrypted columns checked by decrypting a sample: table → values opened. */
  decrypted: number;
  /** Practices whose key material was destroyed (shredded): their data stays unreadable. */
  shredded: string[];
  seconds: number;
}

/** The target cannot take the restore (it holds data, or its schema is ahead of the backup's). Nothing was changed. */
export class RestoreRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefusedError';
  }
}

/** A check after the restore failed: the restored database is not what the backup says. */
export class RestoreCheckError extends Error {
  constructor(
    readonly step: 'counts' | 'audit_chain' | 'decrypt',
    message: string,
  ) {
    super(message);
    this.name = 'RestoreCheckError';
  }
}

/** Migrates the target up to exactly the backup's schema (refusing a target that is ahead of it or on another line). */
async function migrateTo(owner: Knex, schema: readonly string[]): Promise<void> {
  const shipped = await expectedMigrations();
  if (schema.some((m, i) => shipped[i] !== m)) throw new RestoreRefusedError('this backup was taken by a version of Enamel whose migrations this version does not ship; restore it with that version (or a newer one)');
  const applied = (await owner.schema.hasTable('knex_migrations')) ? await owner('knex_migrations').orderBy('id').pluck<string[]>('name') : [];
  if (applied.length > schema.length || applied.some((m, i) => schema[i] !== m)) {
    throw new RestoreRefusedError(`the target database is migrated past the backup's schema (${applied.length} migrations applied, the backup has ${schema.length}): restore into a new, empty database`);
  }
  for (let i = applied.length; i < schema.length; i++) await owner.migrate.up(migratorConfig());
}

/** pg_restore creates the schema itself: the target must have no tables at all. */
async function checkEmptyForPgRestore(ownerUrl: string, schema: readonly string[]): Promise<void> {
  const shipped = await expectedMigrations();
  if (schema.some((m, i) => shipped[i] !== m)) throw new RestoreRefusedError('this backup was taken by a version of Enamel whose migrations this version does not ship; restore it with that version (or a newer one)');
  const probe = await snapshotClient(ownerUrl, 'enamel-restore');
  try {
    const n = Number((await probe.query<{ n: string }>(`SELECT count(*) AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')`)).rows[0]!.n);
    if (n > 0) throw new RestoreRefusedError('a pg_dump backup restores into a new database with no tables at all (it brings its own schema): create an empty database and restore into it');
  } finally {
    await probe.end();
  }
}

/**
 * Restores a backup into an empty database and file store: verifies the backup first (nothing is
 * written from a backup that fails), migrates the target to the backup's schema, puts the files
 * back, loads every table in one transaction (all or nothing), migrates to this version, then
 * checks what it restored: row counts against the manifest, every audit chain verified with its
 * head where the manifest says, and a sample of every encrypted column of every practice decrypted.
 */
export async function restoreBackup(file: string, target: RestoreTarget, deps: { provider: KeyProvider; progress?: Progress; sampleRows?: number }): Promise<RestoreReport> {
  const started = Date.now();
  const say = deps.progress ?? (() => undefined);
  // The target first (quick): a database that holds data is refused before the backup is read.
  const probe = await snapshotClient(target.ownerUrl, 'enamel-restore');
  try {
    const existing = (await probe.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')`)).rows.map((r) => r.name);
    const holding = await holdsData(probe, existing.filter((t) => !NOT_BACKED_UP.has(t)));
    if (holding) throw new RestoreRefusedError(`the target database is not empty (table ${holding} holds rows): restore into a new, empty database`);
  } finally {
    await probe.end();
  }
  const backup = await openVerifiedBackup(file, deps.provider);
  const { manifest } = backup;
  say(`verified ${manifest.parts.length.toLocaleString('en-US')} parts of backup ${manifest.id} (${manifest.createdAt})`);
  const owner = createKnex(target.ownerUrl, { poolMax: 1, applicationName: 'enamel-restore' });
  const runtime = createKnex(target.runtimeUrl, { poolMax: 2, applicationName: 'enamel-restore' });
  const written: string[] = [];
  let committed = false;
  try {
    const tables = manifest.tables.map((t) => t.name);
    if (manifest.method === 'pg_dump') await checkEmptyForPgRestore(target.ownerUrl, manifest.schema);
    else await migrateTo(owner, manifest.schema);

    // The files first: if the database load fails, they are removed again (nothing refers to them).
    const fileParts = manifest.parts.filter((p) => p.name.startsWith('files/'));
    for (const [i, p] of fileParts.entries()) {
      const objectName = p.name.slice('files/'.length);
      await target.files.putNamed(objectName, backup.reader.decrypted(backup.part(p.name), backup.key));
      written.push(objectName);
      if ((i + 1) % 500 === 0) say(`  files: ${(i + 1).toLocaleString('en-US')} of ${fileParts.length.toLocaleString('en-US')}`);
    }

    const client = await snapshotClient(target.ownerUrl, 'enamel-restore');
    let rows = 0;
    try {
      if (manifest.method === 'pg_dump') {
        // pg_restore builds the schema at the backup's version and loads the rows in one transaction.
        const restoring = pgRestore(target.ownerUrl);
        await Promise.all([pipeline(backup.reader.decrypted(backup.part('pg_dump/database'), backup.key), restoring.stdin), restoring.done]);
        committed = true;
        const counted = await countRestored(client, tables);
        for (const t of manifest.tables) {
          if (counted.get(t.name) !== t.rows) throw new RestoreCheckError('counts', `table ${t.name}: ${counted.get(t.name) ?? 0} rows restored, the manifest says ${t.rows}`);
          rows += t.rows;
        }
        say(`  pg_restore: ${rows.toLocaleString('en-US')} rows in ${tables.length} tables`);
      } else {
      const state = await beginRestore(client, tables);
      for (const t of manifest.tables) {
        const counter = new RowCounter();
        await pipeline(backup.reader.decrypted(backup.part(`db/${t.name}`), backup.key), counter, copyIn(client, t.name));
        if (counter.rows !== t.rows) throw new RestoreCheckError('counts', `table ${t.name}: the backup held ${counter.rows} rows, its manifest says ${t.rows}`);
        rows += counter.rows;
        say(`  db/${t.name}: ${counter.rows.toLocaleString('en-US')} rows`);
      }
      await finishRestore(client, tables, state);
      committed = true;
      }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await client.end();
    }
    await migrateLatest(owner);

    const checks = await checkRestored(createDb(runtime), deps.provider, manifest, deps.sampleRows ?? 3);
    return { manifest, tables: manifest.tables.length, rows, files: written.length, ...checks, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    if (!committed) for (const name of written) await target.files.delete(name).catch(() => undefined);
    throw err;
  } finally {
    backup.key.wipe();
    await backup.reader.close();
    await owner.destroy();
    await runtime.destroy();
  }
}

/** The checks after a restore (also the drill's): chains and decryption. */
async function checkRestored(db: ReturnType<typeof createDb>, provider: KeyProvider, manifest: Manifest, perTable: number): Promise<Pick<RestoreReport, 'chains' | 'decrypted' | 'shredded'>> {
  const chains: RestoreReport['chains'] = [];
  for (const head of manifest.chains) {
    const r = await verifyPractice(db, provider, head.practiceId);
    if (!r.ok) throw new RestoreCheckError('audit_chain', `the audit chain of ${head.practiceId === INSTALLATION_ID ? 'the installation' : `practice ${head.practiceId}`} fails verification at event #${r.problem?.seq ?? '?'}`);
    const hash = await db.withPractice(head.practiceId, { kind: 'system', id: 'restore' }, (trx) => chainHashAt(trx, head.seq));
    if (hash !== head.hash) throw new RestoreCheckError('audit_chain', `the audit chain of practice ${head.practiceId} does not end where the manifest says (event #${head.seq})`);
    chains.push({ practiceId: head.practiceId, events: r.checked });
  }
  const keyring = new Keyring(provider);
  let decrypted = 0;
  const shredded: string[] = [];
  for (const practiceId of await practiceIdsToSample(db.knex)) {
    try {
      await db.withPractice(practiceId, { kind: 'system', id: 'restore' }, async (trx) => {
        const pc = new PracticeCrypto(keyring, trx, practiceId);
        for (const table of encryptedTables().filter((x) => manifest.tables.some((m) => m.name === x.table))) {
          for (const row of await sampleRows(trx, table.table, perTable)) {
            const values = await table.open(pc, row);
            decrypted += Object.values(values).filter((v) => v !== null).length;
          }
        }
      });
    } catch (err) {
      if (err instanceof KeyDestroyedError) {
        shredded.push(practiceId);
        continue;
      }
      const code = (err as { code?: unknown }).code;
      throw new RestoreCheckError('decrypt', `practice ${practiceId}: an encrypted value did not decrypt (${err instanceof Error ? err.name : 'error'}${typeof code === 'string' ? ` ${code}` : ''})`);
    }
  }
  return { chains, decrypted, shredded };
}
