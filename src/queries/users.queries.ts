import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching users. Everything runs inside withPractice (RLS). */

/** The TOTP secret is stored encrypted (field envelope bound to users.totp_secret of the row). */
export const userSecrets = encryptedColumns('users', {
  totp_secret: { type: 'text' },
});

export interface UserRow {
  id: string;
  practice_id: string;
  email: string;
  display_name: string;
  status: 'invited' | 'active' | 'deactivated';
  is_owner: boolean;
  password_hash: string | null;
  totp_secret: Buffer | null;
  totp_last_step: string | null;
  mfa_enrolled_at: Date | null;
  failed_logins: number;
  locked_until: Date | null;
  sessions_valid_after: Date | null;
}

const COLUMNS = [
  'id', 'practice_id', 'email', 'display_name', 'status', 'is_owner', 'password_hash', 'totp_secret',
  'totp_last_step', 'mfa_enrolled_at', 'failed_logins', 'locked_until', 'sessions_valid_after',
] as const;

/** A user by email, locked for the sign-in attempt's update (FOR UPDATE). */
export function findUserByEmailForUpdate(trx: Knex.Transaction, email: string): Promise<UserRow | undefined> {
  return trx('users').where({ email: email.trim().toLowerCase() }).forUpdate().first<UserRow | undefined>(COLUMNS);
}

export function findUserById(trx: Knex.Transaction, id: string): Promise<UserRow | undefined> {
  return trx('users').where({ id }).first<UserRow | undefined>(COLUMNS);
}

export function recordFailedSignIn(trx: Knex.Transaction, id: string, failures: number, lockedUntil: Date | null): Promise<number> {
  return trx('users').where({ id }).update({ failed_logins: failures, locked_until: lockedUntil, updated_at: trx.fn.now() });
}

export function recordSuccessfulPassword(trx: Knex.Transaction, id: string): Promise<number> {
  return trx('users').where({ id }).update({ failed_logins: 0, locked_until: null, updated_at: trx.fn.now() });
}

export async function insertUser(trx: Knex.Transaction, row: { id: string; practice_id: string; email: string; display_name: string; status: UserRow['status']; is_owner: boolean; password_hash: string | null; totp_secret?: Buffer | null; mfa_enrolled_at?: Date | null }): Promise<void> {
  await trx('users').insert({ ...row, email: row.email.trim().toLowerCase() });
}
