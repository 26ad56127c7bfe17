import type { Knex } from 'knex';

/** The only SQL touching operators (a platform table: no tenant context) and operator grants. */

export interface OperatorRow {
  id: string;
  email: string;
  display_name: string;
  status: 'active' | 'deactivated';
  password_hash: string;
  totp_kek_id: string;
  totp_wrapped: Buffer;
  totp_last_step: string | null;
  failed_logins: number;
  locked_until: Date | null;
  sessions_valid_after: Date | null;
}

const COLUMNS = ['id', 'email', 'display_name', 'status', 'password_hash', 'totp_kek_id', 'totp_wrapped', 'totp_last_step', 'failed_logins', 'locked_until', 'sessions_valid_after'] as const;

export function findOperatorByEmailForUpdate(trx: Knex.Transaction, email: string): Promise<OperatorRow | undefined> {
  return trx('operators').where({ email: email.trim().toLowerCase() }).forUpdate().first<OperatorRow | undefined>(COLUMNS);
}

export function findOperatorById(knex: Knex, id: string): Promise<OperatorRow | undefined> {
  return knex('operators').where({ id }).first<OperatorRow | undefined>(COLUMNS);
}

export function findOperatorByEmail(knex: Knex, email: string): Promise<Pick<OperatorRow, 'id' | 'email' | 'display_name' | 'status'> | undefined> {
  return knex('operators').where({ email: email.trim().toLowerCase() }).first('id', 'email', 'display_name', 'status');
}

export function operatorNames(knex: Knex, ids: readonly string[]): Promise<{ id: string; email: string; display_name: string }[]> {
  return ids.length ? knex('operators').whereIn('id', ids).select('id', 'email', 'display_name') : Promise.resolve([]);
}

export async function insertOperator(knex: Knex, row: { id: string; email: string; display_name: string; password_hash: string; totp_kek_id: string; totp_wrapped: Buffer }): Promise<void> {
  await knex('operators').insert({ ...row, email: row.email.trim().toLowerCase() });
}

export function updateOperator(
  knex: Knex,
  id: string,
  change: Partial<Pick<OperatorRow, 'totp_last_step' | 'failed_logins' | 'locked_until' | 'totp_kek_id' | 'totp_wrapped' | 'status' | 'password_hash' | 'sessions_valid_after'>> & { last_login_at?: Date },
): Promise<number> {
  return knex('operators').where({ id }).update(change);
}

export interface OperatorListRow {
  id: string;
  email: string;
  display_name: string;
  status: 'active' | 'deactivated';
  last_login_at: Date | null;
  created_at: Date;
}

/** Every operator account (no secrets). */
export function listOperators(knex: Knex): Promise<OperatorListRow[]> {
  return knex('operators').orderBy('display_name').select('id', 'email', 'display_name', 'status', 'last_login_at', 'created_at');
}

/** Deletes every stored session of an operator at once (they also end through sessions_valid_after). */
export function deleteOperatorSessions(knex: Knex, operatorId: string): Promise<number> {
  return knex('http_sessions').whereRaw("sess->'operator'->>'operatorId' = ?", [operatorId]).delete();
}

export function allOperatorSecrets(knex: Knex): Promise<Pick<OperatorRow, 'id' | 'totp_kek_id' | 'totp_wrapped'>[]> {
  return knex('operators').select('id', 'totp_kek_id', 'totp_wrapped');
}

export interface DirectoryRow {
  id: string;
  slug: string;
  name: string;
  status: string;
  created_at: Date;
}

/** Every practice's name, slug and status (SECURITY DEFINER function: no tenant rows). */
export async function practiceDirectory(knex: Knex): Promise<DirectoryRow[]> {
  const r = await knex.raw<{ rows: DirectoryRow[] }>('SELECT * FROM enamel_practice_directory()');
  return r.rows;
}

export interface OperatorGrantRow {
  id: string;
  operator_id: string;
  case_reference: string;
  granted_by: string;
  granted_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const GRANT_COLUMNS = ['id', 'operator_id', 'case_reference', 'granted_by', 'granted_at', 'expires_at', 'revoked_at', 'revoked_by'] as const;

export function listOperatorGrants(trx: Knex.Transaction): Promise<OperatorGrantRow[]> {
  return trx('operator_grants').orderBy('granted_at', 'desc').limit(100).select(GRANT_COLUMNS);
}

export function findOperatorGrant(trx: Knex.Transaction, id: string): Promise<OperatorGrantRow | undefined> {
  return trx('operator_grants').where({ id }).first(GRANT_COLUMNS);
}

/** The operator's grant in the current practice that is running at `now` (not revoked, not expired). */
export function activeOperatorGrant(trx: Knex.Transaction, operatorId: string, now: Date): Promise<OperatorGrantRow | undefined> {
  return trx('operator_grants').where({ operator_id: operatorId }).whereNull('revoked_at').where('granted_at', '<=', now).where('expires_at', '>', now).orderBy('expires_at', 'desc').first(GRANT_COLUMNS);
}

export async function insertOperatorGrant(trx: Knex.Transaction, row: Omit<OperatorGrantRow, 'revoked_at' | 'revoked_by'> & { practice_id: string }): Promise<void> {
  await trx('operator_grants').insert(row);
}

export function revokeOperatorGrant(trx: Knex.Transaction, id: string, by: string, now: Date): Promise<number> {
  return trx('operator_grants').where({ id }).whereNull('revoked_at').update({ revoked_at: now, revoked_by: by });
}

/** Revokes every running grant of an operator in the current practice (the operator is deactivated). */
export function revokeGrantsOfOperator(trx: Knex.Transaction, operatorId: string, by: string, now: Date): Promise<number> {
  return trx('operator_grants').where({ operator_id: operatorId }).whereNull('revoked_at').where('expires_at', '>', now).update({ revoked_at: now, revoked_by: by });
}
