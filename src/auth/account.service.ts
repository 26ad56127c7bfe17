import { audit } from '../audit/record.js';
import { findUserById } from '../queries/users.queries.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { PASSWORD_MESSAGES, checkPassword } from './password-policy.js';
import { acceptTotp, type MfaDeps, type RequestMeta } from './mfa.service.js';
import { newRecoveryCodes } from './totp.js';

export type AccountDeps = MfaDeps;

/**
 * Changes a password: needs the current one; the new one must pass the policy (with the reason
 * when it does not). Other sessions end (sessions_valid_after = now); the caller renews its own.
 */
export async function changePassword(d: AccountDeps, practiceId: string, userId: string, current: string, next: string, meta: RequestMeta): Promise<{ ok: true } | { ok: false; error: string }> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const practice = await trx('practices').first<{ name: string }>('name');
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (!user?.password_hash || !(await verifyPassword(user.password_hash, current))) {
      await audit.record(trx, { ...base, action: 'password_change', outcome: 'denied' });
      return { ok: false, error: 'Your current password is not right.' };
    }
    const problem = checkPassword(next, { practiceName: practice?.name, email: user.email });
    if (problem) return { ok: false, error: PASSWORD_MESSAGES[problem] };
    if (await verifyPassword(user.password_hash, next)) return { ok: false, error: 'Choose a password different from the current one.' };
    await trx('users').where({ id: userId }).update({ password_hash: await hashPassword(next), password_changed_at: meta.now, sessions_valid_after: meta.now, updated_at: trx.fn.now() });
    await audit.record(trx, { ...base, action: 'password_change', outcome: 'allowed' });
    return { ok: true };
  });
}

/** Step-up: the password and, when enrolled, a fresh TOTP code (or a recovery code is not accepted here). */
export async function stepUp(d: AccountDeps, practiceId: string, userId: string, password: string, code: string | undefined, meta: RequestMeta): Promise<boolean> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    let ok = Boolean(user?.password_hash && user.status === 'active' && (await verifyPassword(user.password_hash, password)));
    if (ok && user?.totp_secret) ok = await acceptTotp(d, trx, practiceId, user, code ?? '', meta.now);
    await audit.record(trx, { ...base, action: 'step_up', outcome: ok ? 'allowed' : 'denied' });
    return ok;
  });
}

/** Replaces a user's recovery codes (an MFA change: the route demands a recent step-up). */
export async function regenerateRecoveryCodes(d: AccountDeps, practiceId: string, userId: string, meta: RequestMeta): Promise<string[]> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const { codes, hashes } = newRecoveryCodes();
    await trx('user_recovery_codes').where({ user_id: userId }).delete();
    await trx('user_recovery_codes').insert(hashes.map((code_hash) => ({ practice_id: practiceId, user_id: userId, code_hash })));
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, action: 'mfa_enroll', outcome: 'allowed', resource: { type: 'user', id: userId }, ip: meta.ip, requestId: meta.requestId, details: { count: codes.length, step_up: true } });
    return codes;
  });
}
