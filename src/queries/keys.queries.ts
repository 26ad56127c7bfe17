import type { Knex } from 'knex';
import type { Purpose } from '../crypto/keyring.js';

/**
 * The SQL of key management: data-key versions, re-encryption jobs, and the encrypted tables' rows
 * a rotation or an index fill walks. Runs inside withPractice (the practice's own rows only).
 */

export interface RotationJob {
  id: string;
  practice_id: string;
  purpose: Purpose;
  from_version: number;
  to_version: number;
  status: 'running' | 'done' | 'failed';
  total: number;
  done: number;
  cursor_table: number;
  cursor_id: string | null;
  error_code: string | null;
  error_table: string | null;
}

export function openRotation(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<{ id: string; status: string } | undefined> {
  return trx('key_rotations').where({ practice_id: practiceId, purpose }).whereIn('status', ['running', 'failed']).first('id', 'status');
}

/** SECURITY: FOR UPDATE waits for writers holding the active key FOR SHARE (Keyring.active). */
export function lockActiveKey(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<{ version: number } | undefined> {
  return trx('data_keys').where({ practice_id: practiceId, purpose, status: 'active' }).forUpdate().first<{ version: number } | undefined>('version');
}

export async function highestKeyVersion(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<number> {
  const max = await trx('data_keys').where({ practice_id: practiceId, purpose }).max<{ max: number }>('version as max').first();
  return max?.max ?? 0;
}

export async function retireKey(trx: Knex.Transaction, practiceId: string, purpose: Purpose, version: number): Promise<void> {
  await trx('data_keys').where({ practice_id: practiceId, purpose, version }).update({ status: 'retired', retired_at: trx.fn.now() });
}

export async function countRows(trx: Knex.Transaction, table: string): Promise<number> {
  const [row] = await trx(table).count<{ count: string }[]>('* as count');
  return Number(row?.count ?? 0);
}

export async function insertRotation(trx: Knex.Transaction, row: { practice_id: string; purpose: Purpose; from_version: number; to_version: number; total: number }): Promise<RotationJob> {
  const [job] = await trx('key_rotations').insert(row).returning<RotationJob[]>('*');
  return job!;
}

export function restartFailedRotation(trx: Knex.Transaction, id: string): Promise<number> {
  return trx('key_rotations').where({ id, status: 'failed' }).update({ status: 'running', error_code: null, error_table: null, updated_at: trx.fn.now() });
}

/** The job row for one batch; skipped when another worker holds it. */
export function lockRotation(trx: Knex.Transaction, id: string): Promise<RotationJob | undefined> {
  return trx<RotationJob>('key_rotations').where({ id }).forUpdate().skipLocked().first();
}

export async function updateRotation(trx: Knex.Transaction, id: string, change: Partial<Pick<RotationJob, 'cursor_table' | 'cursor_id' | 'done'>>): Promise<RotationJob> {
  const [next] = await trx('key_rotations').where({ id }).update({ ...change, updated_at: trx.fn.now() }).returning<RotationJob[]>('*');
  return next!;
}

export async function failRotation(trx: Knex.Transaction, id: string, code: string, table: string | null): Promise<void> {
  await trx('key_rotations').where({ id }).update({ status: 'failed', error_code: code, error_table: table, updated_at: trx.fn.now() });
}

/** Nothing is encrypted under the older versions any more: they are destroyed. */
export async function destroyOlderKeys(trx: Knex.Transaction, practiceId: string, purpose: Purpose, below: number): Promise<void> {
  await trx('data_keys').where({ practice_id: practiceId, purpose }).where('version', '<', below).whereNot({ status: 'destroyed' }).update({ status: 'destroyed', wrapped: null, kek_id: null, destroyed_at: trx.fn.now() });
}

export async function finishRotationRow(trx: Knex.Transaction, id: string): Promise<RotationJob> {
  const [done] = await trx('key_rotations').where({ id }).update({ status: 'done', finished_at: trx.fn.now(), updated_at: trx.fn.now() }).returning<RotationJob[]>('*');
  return done!;
}

export function findRotation(trx: Knex.Transaction, id: string): Promise<RotationJob | undefined> {
  return trx<RotationJob>('key_rotations').where({ id }).first();
}

export function unfinishedRotations(trx: Knex.Transaction): Promise<RotationJob[]> {
  return trx<RotationJob>('key_rotations').whereIn('status', ['running', 'failed']).orderBy('started_at').select('*');
}

/** One batch of an encrypted table in id order, after `afterId`. */
export function tableBatch(trx: Knex.Transaction, table: string, afterId: string | null, limit: number): Promise<({ id: string } & Record<string, unknown>)[]> {
  const q = trx(table).orderBy('id').limit(limit).select('*');
  if (afterId) q.where('id', '>', afterId);
  return q;
}

/** Rows of `table` with a value in one of `pairs`' columns but no index in its index column yet. */
export function rowsMissingIndexes(trx: Knex.Transaction, table: string, pairs: readonly { column: string; indexColumn: string }[], afterId: string | undefined, limit: number): Promise<({ id: string } & Record<string, unknown>)[]> {
  const q = trx(table)
    .where((w) => { for (const i of pairs) w.orWhere((x) => x.whereNull(i.indexColumn).whereNotNull(i.column)); })
    .orderBy('id')
    .limit(limit)
    .select<({ id: string } & Record<string, unknown>)[]>(['id', ...new Set(pairs.flatMap((i) => [i.column, i.indexColumn]))]);
  if (afterId) q.where('id', '>', afterId);
  return q;
}

export async function updateEncryptedRow(trx: Knex.Transaction, table: string, id: string, change: Record<string, Buffer>): Promise<void> {
  await trx(table).where({ id }).update(change);
}

export async function moveStoredFile(trx: Knex.Transaction, id: string, objectName: string, keyVersion: number): Promise<void> {
  await trx('stored_files').where({ id }).update({ object_name: objectName, key_version: keyVersion });
}

/** Live data keys not wrapped under `kekId`, locked for re-wrapping. */
export function keysToRewrap(trx: Knex.Transaction, kekId: string): Promise<{ purpose: Purpose; version: number; kek_id: string; wrapped: Buffer }[]> {
  return trx('data_keys').whereNot({ status: 'destroyed' }).whereNot({ kek_id: kekId }).forUpdate().select('purpose', 'version', 'kek_id', 'wrapped');
}

export async function rewrapKey(trx: Knex.Transaction, practiceId: string, purpose: Purpose, version: number, kekId: string, wrapped: Buffer): Promise<void> {
  await trx('data_keys').where({ practice_id: practiceId, purpose, version }).update({ kek_id: kekId, wrapped });
}

/** Crypto-shredding: every data key of the practice destroyed; running jobs end. Returns how many keys. */
export async function destroyAllKeys(trx: Knex.Transaction): Promise<number> {
  const destroyed = await trx('data_keys').whereNot({ status: 'destroyed' }).update({ status: 'destroyed', wrapped: null, kek_id: null, destroyed_at: trx.fn.now() }).returning('version');
  await trx('key_rotations').where({ status: 'running' }).update({ status: 'done', finished_at: trx.fn.now() });
  return destroyed.length;
}

export function keyRows(trx: Knex.Transaction): Promise<{ purpose: Purpose; version: number; status: string; kek_id: string | null; created_at: Date }[]> {
  return trx('data_keys').orderBy([{ column: 'purpose' }, { column: 'version' }]).select('purpose', 'version', 'status', 'kek_id', 'created_at');
}

/** SECURITY: the immutability triggers accept this transaction's writes only as re-encryptions (migration 19). */
export async function markReencryption(trx: Knex.Transaction, what: string): Promise<void> {
  await trx.raw("SELECT set_config('enamel.reencrypt', ?, true)", [what]);
}

// The keyring's own rows (src/crypto/keyring.ts).

export type DataKeyRow = { version: number; status: 'active' | 'retired' | 'destroyed'; kek_id: string | null; wrapped: Buffer | null };

/** SECURITY: FOR SHARE, so a rotation (FOR UPDATE) waits for this transaction (Keyring.active). */
export function activeKeyForShare(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<DataKeyRow | undefined> {
  return trx('data_keys').where({ practice_id: practiceId, purpose, status: 'active' }).forShare().first<DataKeyRow | undefined>('version', 'status', 'kek_id', 'wrapped');
}

export function keyVersion(trx: Knex.Transaction, practiceId: string, purpose: Purpose, version: number): Promise<DataKeyRow | undefined> {
  return trx('data_keys').where({ practice_id: practiceId, purpose, version }).first<DataKeyRow | undefined>('version', 'status', 'kek_id', 'wrapped');
}

export function retiredKeys(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<DataKeyRow[]> {
  return trx('data_keys').where({ practice_id: practiceId, purpose, status: 'retired' }).orderBy('version', 'desc').select<DataKeyRow[]>('version', 'status', 'kek_id', 'wrapped');
}

/** A new active version; false when another process created the same one first. */
export async function insertDataKey(trx: Knex.Transaction, row: { practice_id: string; purpose: Purpose; version: number; kek_id: string; wrapped: Buffer }): Promise<boolean> {
  const inserted = await trx('data_keys').insert({ ...row, status: 'active' }).onConflict().ignore().returning('version');
  return inserted.length > 0;
}

/** The transaction's actor (withPractice's app.actor), for key events. */
export async function currentActor(trx: Knex.Transaction): Promise<string | null> {
  const r = await trx.raw<{ rows: { a: string | null }[] }>("SELECT NULLIF(current_setting('app.actor', true), '') AS a");
  return r.rows[0]?.a ?? null;
}

export async function insertKeyEvent(trx: Knex.Transaction, row: { practice_id: string; action: string; purpose: Purpose | null; version: number | null; kek_id: string | null; count: number | null; actor: string }): Promise<void> {
  await trx('key_events').insert(row);
}

// Stored files (src/crypto/encrypted-files.ts).

export async function insertStoredFile(trx: Knex.Transaction, row: { id: string; practice_id: string; object_name: string; key_version: number; plaintext_size: number }): Promise<void> {
  await trx('stored_files').insert(row);
}

export function storedFileObject(trx: Knex.Transaction, id: string): Promise<{ object_name: string; key_version: number } | undefined> {
  return trx('stored_files').where({ id }).first<{ object_name: string; key_version: number } | undefined>('object_name', 'key_version');
}
