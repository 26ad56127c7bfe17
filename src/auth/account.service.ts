import { audit } from '../audit/record.js';
import { findCurrentPractice } from '../queries/practices.queries.js';
import { findUserById, replaceRecoveryCodes, setPassword } from '../queries/users.queries.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { PASSWORD_MESSAGES, checkPassword } from './password-policy.js';
import { acceptTotp, type MfaDeps, type RequestMeta } from './mfa.service.js';
import { newRecoveryCodes } from './totp.js';

export type AccountDeps = MfaDeps;

/**
 * Changes a password: needs the current one; the new one must pass the policy (with the reason
 * when it does not). Other sessions end (sessions_valid_after = now); the caller renews its own.
 */
export async function changePassword(d: AccountDeps, practiceId: string, userId: string, current: string, next: string, meta: RequestMeta): Promise<{ ok: true } | { ok: false; error: string; field: 'current' | 'password' }> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const practice = await findCurrentPractice(trx);
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (!user?.password_hash || !(await verifyPassword(user.password_hash, current))) {
      await audit.record(trx, { ...base, action: 'password_change', outcome: 'denied' });
      return { ok: false, error: 'Your current password is not right.', field: 'current' };
    }
    const problem = checkPassword(next, { practiceName: practice?.name, email: user.email });
    if (problem) return { ok: false, error: PASSWORD_MESSAGES[problem], field: 'password' };
    if (await verifyPassword(user.password_hash, next)) return { ok: false, error: 'Choose a password different from the current one.', field: 'password' };
    await setPassword(trx, userId, await hashPassword(next), meta.now);
    await audit.record(trx, { ...base, action: 'password_change', outcome: 'allowed' });
    return { ok: true };
  });
}

/**
 * SECURITY: step-up always asks for both factors: the password and a fresh TOTP code (a recovery
 * code is not accepted here). An account without a second factor cannot step up at all: it must
 * enrol first (`no_second_factor`), so no sensitive action is ever confirmed by a password alone.
 */
export async function stepUp(d: AccountDeps, practiceId: string, userId: string, password: string, code: string | undefined, meta: RequestMeta): Promise<{ ok: true } | { ok: false; reason: 'wrong' | 'no_second_factor' }> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (user && !user.totp_secret) {
      await audit.record(trx, { ...base, action: 'step_up', outcome: 'denied', details: { mfa_required: true } });
      return { ok: false, reason: 'no_second_factor' };
    }
    let ok = Boolean(user?.password_hash && user.status === 'active' && (await verifyPassword(user.password_hash, password)));
    if (ok && user) ok = await acceptTotp(d, trx, practiceId, user, code ?? '', meta.now);
    await audit.record(trx, { ...base, action: 'step_up', outcome: ok ? 'allowed' : 'denied' });
    return ok ? { ok: true } : { ok: false, reason: 'wrong' };
  });
}

/** Checks the signed-in user's own password again (first self-enrolment, which has no second factor to step up with). Audited as a step-up. */
export async function confirmOwnPassword(d: AccountDeps, practiceId: string, userId: string, password: string, meta: RequestMeta): Promise<boolean> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const ok = Boolean(user?.password_hash && user.status === 'active' && (await verifyPassword(user.password_hash, password)));
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, resource: { type: 'user', id: userId }, ip: meta.ip, requestId: meta.requestId, action: 'step_up', outcome: ok ? 'allowed' : 'denied', details: { mfa_required: false } });
    return ok;
  });
}

/** Replaces a user's recovery codes (an MFA change: the route demands a recent step-up). */
export async function regenerateRecoveryCodes(d: AccountDeps, practiceId: string, userId: string, meta: RequestMeta): Promise<string[]> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const { codes, hashes } = newRecoveryCodes();
    await replaceRecoveryCodes(trx, practiceId, userId, hashes);
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, action: 'mfa_enroll', outcome: 'allowed', resource: { type: 'user', id: userId }, ip: meta.ip, requestId: meta.requestId, details: { count: codes.length, step_up: true } });
    return codes;
  });
}
