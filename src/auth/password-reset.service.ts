import { createHash, randomBytes } from 'node:crypto';
import { audit } from '../audit/record.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { enqueue } from '../messaging/outbox.js';
import { findCurrentPractice } from '../queries/practices.queries.js';
import { findResetToken, findUserByEmailForUpdate, findUserById, insertResetToken, markResetTokenUsed, resetTokenIssuedSince, updateUser } from '../queries/users.queries.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { checkPassword, PASSWORD_MESSAGES } from './password-policy.js';

/**
 * Password reset by email: a single-use link (256 random bits, stored as SHA-256) valid for 30
 * minutes, sent through the outbox. The request always gets the same answer, whether the account
 * exists or not. A reset sets the password and ends every session; it never bypasses MFA — the
 * user signs in with the new password and their second factor as usual.
 */
export const RESET_TTL_MS = 30 * 60_000;
/** At most one new link per account every two minutes (the answer stays the same). */
export const RESET_MIN_INTERVAL_MS = 2 * 60_000;

const hash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export interface ResetMeta {
  ip: string;
  requestId: string;
  now: Date;
}

export async function requestPasswordReset(d: { db: Db; keyring: Keyring }, practiceId: string, slug: string, publicUrl: URL, email: string, meta: ResetMeta): Promise<void> {
  await d.db.withPractice(practiceId, { kind: 'anonymous' }, async (trx) => {
    const user = await findUserByEmailForUpdate(trx, email);
    if (!user || user.status !== 'active') {
      await audit.record(trx, { practiceId, actor: { kind: 'anonymous' }, action: 'password_reset', outcome: 'denied', ip: meta.ip, requestId: meta.requestId });
      return;
    }
    if (await resetTokenIssuedSince(trx, user.id, new Date(meta.now.getTime() - RESET_MIN_INTERVAL_MS))) return;
    const token = randomBytes(32).toString('base64url');
    await insertResetToken(trx, { practice_id: practiceId, user_id: user.id, token_hash: hash(token), expires_at: new Date(meta.now.getTime() + RESET_TTL_MS), created_at: meta.now });
    const practice = await findCurrentPractice(trx);
    await enqueue(trx, d.keyring, { practiceId, template: 'staff_password_reset', to: user.email, params: { practiceName: practice?.name ?? 'Enamel', link: new URL(`/p/${slug}/password-reset/${token}`, publicUrl).toString() } });
    await audit.record(trx, { practiceId, actor: { kind: 'anonymous' }, action: 'password_reset', outcome: 'allowed', resource: { type: 'user', id: user.id }, ip: meta.ip, requestId: meta.requestId });
  });
}

type Valid = { ok: true; tokenId: string; userId: string; email: string };

export async function checkResetToken(db: Db, practiceId: string, token: string, now: Date): Promise<Valid | { ok: false }> {
  return db.withPractice(practiceId, { kind: 'anonymous' }, async (trx) => {
    const row = await findResetToken(trx, hash(token));
    const user = row && (await findUserById(trx, row.user_id));
    if (!row || !user || row.used_at || row.expires_at <= now || user.status !== 'active') return { ok: false };
    return { ok: true, tokenId: row.id, userId: user.id, email: user.email };
  });
}

export async function resetPassword(db: Db, practiceId: string, token: string, password: string, meta: ResetMeta): Promise<{ ok: true } | { ok: false; error: string } | { ok: false; gone: true }> {
  return db.withPractice(practiceId, { kind: 'anonymous' }, async (trx) => {
    const row = await findResetToken(trx, hash(token), { forUpdate: true });
    const user = row && (await findUserById(trx, row.user_id));
    if (!row || !user || row.used_at || row.expires_at <= meta.now || user.status !== 'active') return { ok: false, gone: true };
    const practice = await findCurrentPractice(trx);
    const problem = checkPassword(password, { practiceName: practice?.name, email: user.email });
    if (problem) return { ok: false, error: PASSWORD_MESSAGES[problem] };
    if (user.password_hash && (await verifyPassword(user.password_hash, password))) return { ok: false, error: 'Choose a password different from the current one.' };
    await markResetTokenUsed(trx, row.id, meta.now);
    // SECURITY: every session ends; MFA stays as it is (the next sign-in still asks for the code).
    await updateUser(trx, user.id, { password_hash: await hashPassword(password), password_changed_at: meta.now, sessions_valid_after: meta.now, failed_logins: 0, locked_until: null });
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: user.id }, action: 'password_reset', outcome: 'allowed', resource: { type: 'user', id: user.id }, ip: meta.ip, requestId: meta.requestId, details: { reference_id: row.id } });
    return { ok: true };
  });
}
