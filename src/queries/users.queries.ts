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
  deactivated_reason: 'manual' | 'inactive' | 'access_review' | null;
  mfa_reset_at: Date | null;
  last_login_at: Date | null;
}

const COLUMNS = [
  'id', 'practice_id', 'email', 'display_name', 'status', 'is_owner', 'password_hash', 'totp_secret',
  'totp_last_step', 'mfa_enrolled_at', 'failed_logins', 'locked_until', 'sessions_valid_after', 'mfa_reset_at', 'last_login_at', 'deactivated_reason',
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

/** A completed sign-in: counters cleared, last sign-in time kept (access reviews show it). */
export function recordLogin(trx: Knex.Transaction, id: string, now: Date): Promise<number> {
  return trx('users').where({ id }).update({ failed_logins: 0, locked_until: null, last_login_at: now });
}

/** True when MFA was reset by an administrator and the user has not enrolled again. */
export function mustReenroll(user: Pick<UserRow, 'mfa_enrolled_at' | 'mfa_reset_at'>): boolean {
  return !user.mfa_enrolled_at && Boolean(user.mfa_reset_at);
}

export function emailTaken(trx: Knex.Transaction, email: string): Promise<boolean> {
  return trx('users').where({ email: email.trim().toLowerCase() }).first('id').then(Boolean);
}

export interface UserListRow {
  id: string;
  email: string;
  display_name: string;
  status: UserRow['status'];
  is_owner: boolean;
  mfa_enrolled_at: Date | null;
  last_login_at: Date | null;
  locked_until: Date | null;
}

export function listUsers(trx: Knex.Transaction): Promise<UserListRow[]> {
  return trx('users').orderBy([{ column: 'status' }, { column: 'display_name' }]).select('id', 'email', 'display_name', 'status', 'is_owner', 'mfa_enrolled_at', 'last_login_at', 'locked_until');
}

export function updateUser(trx: Knex.Transaction, id: string, change: Partial<Pick<UserRow, 'status' | 'deactivated_reason' | 'sessions_valid_after' | 'password_hash' | 'totp_secret' | 'totp_last_step' | 'mfa_enrolled_at' | 'mfa_reset_at' | 'failed_logins' | 'locked_until'>> & { password_changed_at?: Date }): Promise<number> {
  return trx('users').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

/** What deactivating an account removed or ended (counts only). */
export interface DeactivationSteps {
  sessions: number;
  recoveryCodes: number;
  secretDestroyed: boolean;
  invitations: number;
  links: number;
}

/**
 * SECURITY: deactivation is a checklist, not a flag (seed 004, 02.2): the account is marked
 * deactivated (with why), every session of it ends, its TOTP secret and recovery codes are destroyed
 * (reactivation means enrolling again), and the invitations and patient links it created that are
 * still open are revoked. Returns what each step did.
 */
export async function deactivateAccount(trx: Knex.Transaction, practiceId: string, userId: string, reason: NonNullable<UserRow['deactivated_reason']>, now: Date): Promise<DeactivationSteps> {
  const before = await trx('users').where({ id: userId }).first<{ totp_secret: Buffer | null } | undefined>('totp_secret');
  await updateUser(trx, userId, { status: 'deactivated', deactivated_reason: reason, sessions_valid_after: now, totp_secret: null, totp_last_step: null, mfa_enrolled_at: null, mfa_reset_at: now });
  const recoveryCodes = await deleteRecoveryCodes(trx, userId);
  const invitations = await trx('user_invitations').where((q) => q.where({ created_by: userId }).orWhere({ user_id: userId })).whereNull('used_at').whereNull('revoked_at').where('expires_at', '>', now).update({ revoked_at: now });
  const links = await trx('patient_links').where({ created_by: userId }).whereNull('revoked_at').whereNull('locked_at').where('expires_at', '>', now).update({ revoked_at: now });
  const sessions = await deleteSessionsOfUser(trx, practiceId, userId);
  return { sessions, recoveryCodes, secretDestroyed: Boolean(before?.totp_secret), invitations, links };
}

/** Deletes every stored session of a user at once (they also end through sessions_valid_after). */
export function deleteSessionsOfUser(trx: Knex.Transaction, practiceId: string, userId: string): Promise<number> {
  return trx('http_sessions').whereRaw("sess->'staff'->>'userId' = ? AND sess->'staff'->>'practiceId' = ?", [userId, practiceId]).delete();
}

export interface InvitationRow {
  id: string;
  user_id: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

export async function insertInvitation(trx: Knex.Transaction, row: { practice_id: string; user_id: string; token_hash: string; created_by: string; expires_at: Date }): Promise<void> {
  await trx('user_invitations').where({ user_id: row.user_id }).whereNull('used_at').whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
  await trx('user_invitations').insert(row);
}

export function findInvitationByHashForUpdate(trx: Knex.Transaction, tokenHash: string): Promise<InvitationRow | undefined> {
  return trx('user_invitations').where({ token_hash: tokenHash }).forUpdate().first('id', 'user_id', 'expires_at', 'used_at', 'revoked_at');
}

export function markInvitationUsed(trx: Knex.Transaction, id: string, now: Date): Promise<number> {
  return trx('user_invitations').where({ id }).update({ used_at: now });
}

export function deleteRecoveryCodes(trx: Knex.Transaction, userId: string): Promise<number> {
  return trx('user_recovery_codes').where({ user_id: userId }).delete();
}

/** Replaces a user's recovery codes with these hashes. */
export async function replaceRecoveryCodes(trx: Knex.Transaction, practiceId: string, userId: string, hashes: readonly string[]): Promise<void> {
  await deleteRecoveryCodes(trx, userId);
  await trx('user_recovery_codes').insert(hashes.map((code_hash) => ({ practice_id: practiceId, user_id: userId, code_hash })));
}

export function unusedRecoveryCodes(trx: Knex.Transaction, userId: string): Promise<{ id: string; code_hash: string }[]> {
  return trx('user_recovery_codes').where({ user_id: userId }).whereNull('used_at').select<{ id: string; code_hash: string }[]>('id', 'code_hash');
}

export function markRecoveryCodeUsed(trx: Knex.Transaction, id: string, now: Date): Promise<number> {
  return trx('user_recovery_codes').where({ id }).update({ used_at: now });
}

/** A confirmed TOTP enrolment: the sealed secret, its first time step, when. */
export function saveTotpEnrollment(trx: Knex.Transaction, userId: string, sealed: Record<string, Buffer | null>, step: number, now: Date): Promise<number> {
  return trx('users').where({ id: userId }).update({ ...sealed, totp_last_step: step, mfa_enrolled_at: now, updated_at: trx.fn.now() });
}

/** Stores the time step of an accepted TOTP code (replay guard). */
export function recordTotpStep(trx: Knex.Transaction, userId: string, step: number): Promise<number> {
  return trx('users').where({ id: userId }).update({ totp_last_step: step });
}

export async function resetTokenIssuedSince(trx: Knex.Transaction, userId: string, since: Date): Promise<boolean> {
  return Boolean(await trx('password_reset_tokens').where({ user_id: userId }).where('created_at', '>', since).first('id'));
}

export async function insertResetToken(trx: Knex.Transaction, row: { practice_id: string; user_id: string; token_hash: string; expires_at: Date; created_at: Date }): Promise<void> {
  await trx('password_reset_tokens').insert(row);
}

export function findResetToken(trx: Knex.Transaction, tokenHash: string, options: { forUpdate?: boolean } = {}): Promise<{ id: string; user_id: string; expires_at: Date; used_at: Date | null } | undefined> {
  const q = trx('password_reset_tokens').where({ token_hash: tokenHash });
  if (options.forUpdate) q.forUpdate();
  return q.first('id', 'user_id', 'expires_at', 'used_at');
}

export function markResetTokenUsed(trx: Knex.Transaction, id: string, now: Date): Promise<number> {
  return trx('password_reset_tokens').where({ id }).update({ used_at: now });
}

/** Every session of the practice but one (the administrator's own). */
export function deleteSessionsOfPractice(trx: Knex.Transaction, practiceId: string, keepSid: string): Promise<number> {
  return trx('http_sessions').whereRaw("sess->'staff'->>'practiceId' = ?", [practiceId]).whereNot({ sid: keepSid }).delete();
}

/** Sessions created before `now` of every user but `exceptUserId` are void from now on. */
export async function revokeAllSessionsExcept(trx: Knex.Transaction, exceptUserId: string, now: Date): Promise<void> {
  await trx('users').whereNot({ id: exceptUserId }).update({ sessions_valid_after: now, updated_at: trx.fn.now() });
}

/** A new password: every other session of the account becomes invalid from `now`. */
export async function setPassword(trx: Knex.Transaction, id: string, passwordHash: string, now: Date): Promise<void> {
  await trx('users').where({ id }).update({ password_hash: passwordHash, password_changed_at: now, sessions_valid_after: now, updated_at: trx.fn.now() });
}
