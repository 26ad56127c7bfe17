import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { allTenantIds } from '../queries/practices.queries.js';
import {
  countRows,
  destroyAllKeys,
  destroyOlderKeys,
  failRotation,
  findRotation,
  finishRotationRow,
  highestKeyVersion,
  insertRotation,
  keyRows,
  keysToRewrap,
  lockActiveKey,
  lockRotation,
  markReencryption,
  moveStoredFile,
  openRotation,
  restartFailedRotation,
  retireKey,
  rewrapKey,
  rowsMissingIndexes,
  tableBatch,
  unfinishedRotations,
  updateEncryptedRow,
  updateRotation,
  type RotationJob,
} from '../queries/keys.queries.js';
// SECURITY: loads every encrypted-column declaration before any rotation can run.
import '../queries/encrypted-tables.js';
import type { Actor, Db } from '../db/tenant.js';
import type { FileStore } from '../storage/file-store.js';
import { blindIndex, normalizeForIndex } from './blind-index.js';
import { PracticeCrypto, encryptedTables, indexColumns } from './encrypted-columns.js';
import { decryptObject } from './encrypted-files.js';
import { ContentHashMismatchError, CryptoError, KeyDestroyedError, RotationFailedError } from './errors.js';
import { FileEncryptor } from './file-cipher.js';
import { decryptField, encryptField, fieldKeyVersion } from './field-cipher.js';
import type { SecretKey } from './secret-key.js';
import { PURPOSES, recordKeyEvent, wrapContext, type Keyring, type Purpose } from './keyring.js';

/**
 * Key operations: rotate a practice's data key and re-encrypt its data (resumable, with progress),
 * re-wrap every data key under a new KEK, and crypto-shred a practice. Every operation writes a
 * `key_events` row in the same transaction.
 */
export interface KeyServices {
  db: Db;
  keyring: Keyring;
  files: FileStore;
}

export type { RotationJob } from '../queries/keys.queries.js';

function tablesFor(purpose: Purpose): string[] {
  if (purpose === 'files') return ['stored_files'];
  const tables = encryptedTables();
  return (purpose === 'blind-index' ? tables.filter((t) => Object.entries(t.columns).some(([c, spec]) => indexColumns(c, spec).length > 0)) : tables).map((t) => t.table);
}

/**
 * Starts a rotation: a new active version, the old one retired (still readable), and a job that
 * re-encrypts everything under the new version. Returns the job; run it with runRotation().
 */
export async function rotateDataKey(s: KeyServices, practiceId: string, purpose: Purpose, actor: Actor): Promise<RotationJob> {
  return s.db.withPractice(practiceId, actor, async (trx) => {
    const open = await openRotation(trx, practiceId, purpose);
    if (open) throw new CryptoError(`a ${purpose} rotation is ${open.status === 'failed' ? 'unfinished (it failed)' : 'already running'} for this practice; run \`enamel keys resume\` first`);
    await s.keyring.active(trx, practiceId, purpose); // creates v1 if the practice never had one
    // SECURITY: FOR UPDATE waits for writers holding the active key FOR SHARE (Keyring.active).
    const current = await lockActiveKey(trx, practiceId, purpose);
    const toVersion = (await highestKeyVersion(trx, practiceId, purpose)) + 1;
    await retireKey(trx, practiceId, purpose, current!.version);
    await s.keyring.create(trx, practiceId, purpose, toVersion);
    let total = 0;
    for (const table of tablesFor(purpose)) total += await countRows(trx, table);
    const job = await insertRotation(trx, { practice_id: practiceId, purpose, from_version: current!.version, to_version: toVersion, total });
    await recordKeyEvent(trx, practiceId, { action: 'rotated', purpose, version: toVersion, count: total });
    return job;
  });
}

/**
 * Runs (or resumes) a re-encryption job in batches. Each batch is one transaction that also moves
 * the job's cursor, so a crash loses at most the batch in flight and a rerun continues where it
 * stopped. Two workers never take the same batch (the job row is locked, SKIP LOCKED).
 */
export async function runRotation(
  s: KeyServices,
  practiceId: string,
  jobId: string,
  actor: Actor,
  options: { batchSize?: number; maxBatches?: number; signal?: AbortSignal; onProgress?: (job: RotationJob) => void } = {},
): Promise<RotationJob> {
  const batchSize = options.batchSize ?? 200;
  // CASE: a failed job is resumed here: it runs again from its cursor (the failed batch rolled back).
  await s.db.withPractice(practiceId, actor, (trx) => restartFailedRotation(trx, jobId));
  for (let batch = 0; options.maxBatches === undefined || batch < options.maxBatches; batch++) {
    // NOTE: stopping between batches is always safe; the next run resumes from the cursor.
    if (options.signal?.aborted) break;
    const newObjects: string[] = [];
    const oldObjects: string[] = [];
    let job: RotationJob | undefined;
    let nextTable = false;
    let table: string | undefined;
    try {
      job = await s.db.withPractice(practiceId, actor, async (trx) => {
        const j = await lockRotation(trx, jobId);
        if (!j || j.status !== 'running') return j;
        const tables = tablesFor(j.purpose);
        table = tables[j.cursor_table];
        if (!table) return finishRotation(trx, j);
        const rows = await tableBatch(trx, table, j.cursor_id, batchSize);
        if (rows.length === 0) {
          nextTable = true;
          return updateRotation(trx, j.id, { cursor_table: j.cursor_table + 1, cursor_id: null });
        }
        // SECURITY: the immutability triggers (signed notes, decided plans, submissions…) accept this
        // batch's writes only as re-encryptions under the running rotation (migration 19).
        if (j.purpose !== 'files') await markReencryption(trx, j.purpose === 'fields' ? `fields:${j.to_version}` : 'blind-index');
        const pc = new PracticeCrypto(s.keyring, trx, practiceId);
        if (j.purpose === 'files') await reencryptFiles(s, pc, j, rows, newObjects, oldObjects);
        else await reencryptRows(pc, j, table, rows);
        return updateRotation(trx, j.id, { cursor_id: rows[rows.length - 1]!.id, done: j.done + rows.length });
      });
    } catch (err) {
      // The batch rolled back: blobs it wrote have no row; remove them. The job records why it stopped.
      await Promise.all(newObjects.map((o) => s.files.delete(o)));
      const code = failureCode(err);
      await s.db.withPractice(practiceId, actor, (trx) => failRotation(trx, jobId, code, table ?? null));
      throw new RotationFailedError(jobId, code, table);
    }
    await Promise.all(oldObjects.map((o) => s.files.delete(o)));
    if (!job) throw new CryptoError('the rotation job is not found, or another worker is running it');
    // NOTE: moving on to the next table is bookkeeping, not a batch of work.
    if (nextTable) batch--;
    options.onProgress?.(job);
    if (job.status === 'done') {
      // The old versions are destroyed: drop any cached copy in this process too.
      s.keyring.evict(practiceId);
      return job;
    }
  }
  return (await s.db.withPractice(practiceId, actor, (trx) => findRotation(trx, jobId)))!;
}

/** Why a batch failed, as a code safe to store: the PostgreSQL error code, or the error's class name. */
function failureCode(err: unknown): string {
  const pg = (err as { code?: unknown } | null)?.code;
  const s = typeof pg === 'string' && /^[0-9A-Z]{5}$/.test(pg) ? `pg_${pg}` : err instanceof Error ? err.name : 'Error';
  return s.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60) || 'Error';
}

async function finishRotation(trx: Knex.Transaction, j: RotationJob): Promise<RotationJob> {
  // Nothing is encrypted under the older versions any more: destroy them.
  await destroyOlderKeys(trx, j.practice_id, j.purpose, j.to_version);
  const done = await finishRotationRow(trx, j.id);
  await recordKeyEvent(trx, j.practice_id, { action: 'reencrypted', purpose: j.purpose, version: j.to_version, count: j.done });
  return done;
}

/**
 * Re-encrypts (fields) or re-indexes (blind-index) one batch. SECURITY: the content is never changed:
 * each new envelope is decrypted again and must give back exactly the old plaintext, and a value
 * whose signed content hash (a signed note's) no longer matches stops the rotation instead of being
 * sealed anew under the new key.
 */
async function reencryptRows(pc: PracticeCrypto, j: RotationJob, table: string, rows: ({ id: string } & Record<string, unknown>)[]): Promise<void> {
  const def = encryptedTables().find((t) => t.table === table)!;
  const newKey = await pc.keyring.version(pc.trx, pc.practiceId, j.purpose, j.to_version);
  for (const row of rows) {
    const update: Record<string, Buffer> = {};
    for (const [column, spec] of Object.entries(def.columns)) {
      const envelope = row[column];
      if (!Buffer.isBuffer(envelope)) continue;
      const place = { practiceId: pc.practiceId, table, column, rowId: row.id };
      const version = fieldKeyVersion(envelope);
      if (j.purpose === 'fields' && version === j.to_version) continue;
      const plaintext = decryptField(await pc.keyring.version(pc.trx, pc.practiceId, 'fields', version), envelope, place);
      const hash = def.contentHash?.column === column ? row[def.contentHash.hashColumn] : undefined;
      if (typeof hash === 'string' && createHash('sha256').update(plaintext).digest('hex') !== hash) {
        throw new ContentHashMismatchError(`${table} row ${row.id}: the stored ${column} does not match its content hash`);
      }
      if (j.purpose === 'fields') {
        const sealed = encryptField(newKey, j.to_version, plaintext, place);
        if (!decryptField(newKey, sealed, place).equals(plaintext)) throw new CryptoError(`${table}.${column}: the new envelope does not decrypt to the same value`);
        update[column] = sealed;
      } else {
        for (const [indexColumn, kind] of indexColumns(column, spec)) {
          const normalized = normalizeForIndex(kind, plaintext.toString('utf8'));
          if (normalized !== undefined) update[indexColumn] = blindIndex(newKey, kind, normalized);
        }
      }
    }
    if (Object.keys(update).length > 0) await updateEncryptedRow(pc.trx, table, row.id, update);
  }
}

async function reencryptFiles(s: KeyServices, pc: PracticeCrypto, j: RotationJob, rows: Record<string, unknown>[], created: string[], replaced: string[]): Promise<void> {
  const newKey = await pc.keyring.version(pc.trx, pc.practiceId, 'files', j.to_version);
  for (const row of rows as { id: string; object_name: string; key_version: number }[]) {
    if (row.key_version === j.to_version) continue;
    const plaintext = decryptObject(pc, s.files, row.object_name, row.id);
    const { objectName } = await s.files.put(plaintext, new FileEncryptor(newKey, j.to_version, { practiceId: pc.practiceId, fileId: row.id }));
    created.push(objectName);
    await moveStoredFile(pc.trx, row.id, objectName, j.to_version);
    replaced.push(row.object_name);
  }
}

/** Unfinished (running or failed) rotation jobs of a practice. */
export function runningRotations(s: KeyServices, practiceId: string, actor: Actor): Promise<RotationJob[]> {
  return s.db.withPractice(practiceId, actor, unfinishedRotations);
}

/**
 * Resumes every unfinished re-encryption of every practice (start-up, `enamel keys resume`),
 * failed ones included. One job failing does not stop the others (another purpose or practice):
 * it is marked failed again with its reason and listed in `failed`.
 */
export async function resumeAllRotations(
  s: KeyServices,
  actor: Actor,
  options: { signal?: AbortSignal; onProgress?: (job: RotationJob) => void } = {},
): Promise<{ resumed: number; failed: RotationFailedError[] }> {
  let resumed = 0;
  const failed: RotationFailedError[] = [];
  for (const practiceId of await allTenantIds(s.db.knex)) {
    for (const job of await runningRotations(s, practiceId, actor)) {
      if (options.signal?.aborted) return { resumed, failed };
      try {
        await runRotation(s, practiceId, job.id, actor, options);
        resumed++;
      } catch (err) {
        if (!(err instanceof RotationFailedError)) throw err;
        failed.push(err);
      }
    }
  }
  return { resumed, failed };
}

/**
 * Computes the blind indexes a row lacks: rows written before an index was declared (migration 21
 * added the name-prefix and phone last-four indexes). Walks each table by id in batches with the
 * active blind-index key; a value that gives no index (a name shorter than the prefix) stays NULL.
 * Start-up and `enamel keys resume` run it; a shredded practice is skipped. Returns rows updated.
 */
export async function fillMissingIndexes(s: KeyServices, actor: Actor, options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<number> {
  const batchSize = options.batchSize ?? 500;
  let filled = 0;
  for (const def of encryptedTables()) {
    // NOTE: only the further indexes (moreIndexes): an exact index was always written with its value.
    const indexed = Object.entries(def.columns).flatMap(([column, spec]) => Object.entries(spec.moreIndexes ?? {}).map(([indexColumn, kind]) => ({ column, indexColumn, kind })));
    if (indexed.length === 0) continue;
    for (const practiceId of await allTenantIds(s.db.knex)) {
      let cursor: string | undefined;
      try {
        while (!options.signal?.aborted) {
          const batch = await s.db.withPractice(practiceId, actor, async (trx) => {
            const rows = await rowsMissingIndexes(trx, def.table, indexed, cursor, batchSize);
            if (rows.length === 0) return undefined;
            const pc = new PracticeCrypto(s.keyring, trx, practiceId);
            let key: SecretKey | undefined;
            let updated = 0;
            for (const row of rows) {
              const update: Record<string, Buffer> = {};
              for (const i of indexed) {
                const envelope = row[i.column];
                if (row[i.indexColumn] !== null || !Buffer.isBuffer(envelope)) continue;
                const plain = decryptField(await pc.keyring.version(trx, practiceId, 'fields', fieldKeyVersion(envelope)), envelope, { practiceId, table: def.table, column: i.column, rowId: row.id });
                const normalized = normalizeForIndex(i.kind, plain.toString('utf8'));
                if (normalized === undefined) continue;
                key ??= (await s.keyring.active(trx, practiceId, 'blind-index')).key;
                update[i.indexColumn] = blindIndex(key, i.kind, normalized);
              }
              if (Object.keys(update).length === 0) continue;
              await updateEncryptedRow(trx, def.table, row.id, update);
              updated++;
            }
            return { last: rows[rows.length - 1]!.id, updated };
          });
          if (!batch) break;
          cursor = batch.last;
          filled += batch.updated;
        }
      } catch (err) {
        // CASE: a shredded practice's values can no longer be read, so they need no index.
        if (!(err instanceof KeyDestroyedError)) throw err;
      }
    }
  }
  return filled;
}

/** KEK rotation: re-wraps every live data key under the provider's active KEK. Data is untouched. */
export async function rewrapAll(s: KeyServices, actor: Actor): Promise<number> {
  const target = s.keyring.provider.activeKekId();
  let count = 0;
  for (const practiceId of await allTenantIds(s.db.knex)) {
    count += await s.db.withPractice(practiceId, actor, async (trx) => {
      const rows = await keysToRewrap(trx, target);
      for (const row of rows) {
        const context = wrapContext(practiceId, row.purpose, row.version);
        const plaintext = await s.keyring.provider.unwrap(row.kek_id, row.wrapped, context);
        const { kekId, wrapped } = await s.keyring.provider.wrap(plaintext, context);
        plaintext.fill(0);
        await rewrapKey(trx, practiceId, row.purpose, row.version, kekId, wrapped);
        await recordKeyEvent(trx, practiceId, { action: 'rewrapped', purpose: row.purpose, version: row.version, kekId });
      }
      return rows.length;
    });
  }
  return count;
}

/**
 * Crypto-shredding: destroys every data key of a practice. Its ciphertexts — here and in every
 * backup taken after this moment's keys are gone from it — can never be decrypted again; reads
 * fail with KeyDestroyedError. Irreversible by design.
 */
export async function shredPractice(s: KeyServices, practiceId: string, actor: Actor): Promise<number> {
  const count = await s.db.withPractice(practiceId, actor, async (trx) => {
    const destroyed = await destroyAllKeys(trx);
    await recordKeyEvent(trx, practiceId, { action: 'shredded', count: destroyed });
    return destroyed;
  });
  s.keyring.evict(practiceId);
  // SECURITY: then the provider's practice material, so database backups cannot be unwrapped either.
  await s.keyring.provider.destroyPractice(practiceId);
  return count;
}

export interface KeyStatusRow {
  practiceId: string;
  purpose: Purpose;
  version: number;
  status: string;
  kekId: string | null;
  createdAt: Date;
}

/** Every data key's version, status and KEK id, and running jobs' progress (no key material). */
export async function keyStatus(s: KeyServices, actor: Actor): Promise<{ keys: KeyStatusRow[]; jobs: RotationJob[] }> {
  const keys: KeyStatusRow[] = [];
  const jobs: RotationJob[] = [];
  for (const practiceId of await allTenantIds(s.db.knex)) {
    await s.db.withPractice(practiceId, actor, async (trx) => {
      const rows = await keyRows(trx);
      for (const r of rows) keys.push({ practiceId, purpose: r.purpose, version: r.version, status: r.status, kekId: r.kek_id, createdAt: r.created_at });
      jobs.push(...(await unfinishedRotations(trx)));
    });
  }
  return { keys, jobs };
}

export { PURPOSES };
