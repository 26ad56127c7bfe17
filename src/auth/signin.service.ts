import { raiseAlert } from '../alerts/alerts.js';
import { audit } from '../audit/record.js';
import type { Db } from '../db/tenant.js';
import { findUserByEmailForUpdate, findUserById, mustReenroll, recordFailedSignIn, recordLogin, recordSuccessfulPassword, type UserRow } from '../queries/users.queries.js';
import { findPracticeSettings, type PracticeSettingsRow } from '../queries/practices.queries.js';
import { dummyHash, verifyPassword } from './password-hash.js';
import { mfaRequiredFor } from '../policies/actor.js';
import { permissionsOfUser } from '../queries/roles.queries.js';
import { accountFailure, accountRefusing, countIpFailure, ipBlocked } from './throttle.js';

/**
 * The password step of staff sign-in. Documented limits (README "Sign-in"), all from
 * auth/throttle.ts: a growing delay after each failure, a 15-minute lock after five in a row (the
 * security contact is alerted at the lock), 30 failures from one IP address within 15 minutes
 * block it; the same neutral answer, after the same argon2 work, whether the account exists, is
 * deactivated, locked, or the password is wrong.
 */
export const NEUTRAL_SIGNIN_MESSAGE = 'The email or password is not right, or sign-in is paused for a few minutes after several tries. Check them and try again.';

export type PasswordStepResult =
  | { ok: true; userId: string; next: 'totp' | 'enroll' | 'done' }
  | { ok: false; message: string };

export interface SignInAttempt {
  practiceId: string;
  email: string;
  password: string;
  ip: string;
  requestId: string;
  now: Date;
  /** The practice requires MFA for everyone (owners and administrators always need it). */
  mfaRequiredForAll: boolean;
}

/** SECURITY: one answer for every failure; the reason goes to the audit log only (as a code). */
export async function passwordStep(db: Db, a: SignInAttempt): Promise<PasswordStepResult> {
  const failure = { ok: false, message: NEUTRAL_SIGNIN_MESSAGE } as const;
  if (await ipBlocked(db.knex, 'password', a.ip, a.now)) {
    await verifyPassword(await dummyHash(), a.password); // same work as a real attempt
    return failure;
  }
  const outcome = await db.withPractice(a.practiceId, { kind: 'anonymous' }, async (trx) => {
    const user = await findUserByEmailForUpdate(trx, a.email);
    const passwordOk = await verifyPassword(user?.password_hash ?? (await dummyHash()), a.password);
    const base = { practiceId: a.practiceId, actor: { kind: 'anonymous' as const }, ip: a.ip, requestId: a.requestId };
    if (!user || user.status !== 'active') {
      await audit.record(trx, { ...base, action: 'login_failed', outcome: 'denied', ...(user ? { resource: { type: 'user', id: user.id } } : {}) });
      return 'failed' as const;
    }
    if (accountRefusing(user.locked_until, a.now)) {
      await audit.record(trx, { ...base, action: 'login_failed', outcome: 'denied', resource: { type: 'user', id: user.id }, details: { count: user.failed_logins } });
      return 'failed' as const;
    }
    if (!passwordOk) {
      const { failures, lockedUntil, lockedNow } = accountFailure(user.failed_logins, a.now);
      await recordFailedSignIn(trx, user.id, failures, lockedUntil);
      await audit.record(trx, { ...base, action: 'login_failed', outcome: 'denied', resource: { type: 'user', id: user.id }, details: { count: failures } });
      if (lockedNow) {
        await audit.record(trx, { ...base, actor: { kind: 'system', id: 'signin' }, action: 'lockout', outcome: 'allowed', resource: { type: 'user', id: user.id }, details: { count: failures } });
        // SECURITY: the alerts page, the banner and an email to the security contact (outbox job).
        await raiseAlert(trx, { practiceId: a.practiceId, kind: 'signin_lockout', severity: 'warning', details: { target_type: 'user', target_id: user.id, count: failures } });
      }
      return 'failed' as const;
    }
    await recordSuccessfulPassword(trx, user.id);
    return { user, privileged: mfaRequiredFor(await permissionsOfUser(trx, user.id), user.is_owner) || mustReenroll(user) };
  });
  if (outcome === 'failed') {
    await countIpFailure(db.knex, 'password', a.ip, a.now);
    return failure;
  }
  return { ok: true, userId: outcome.user.id, next: nextFactor(outcome.user, outcome.privileged || a.mfaRequiredForAll) };
}

/** After the password: verify TOTP if enrolled; enrol first if MFA is required; else done. */
export function nextFactor(user: Pick<UserRow, 'mfa_enrolled_at'>, mfaRequired: boolean): 'totp' | 'enroll' | 'done' {
  if (user.mfa_enrolled_at) return 'totp';
  return mfaRequired ? 'enroll' : 'done';
}

/** The practice's sign-in policy facts (read before the password step). */
export function signInSettings(db: Db, practiceId: string): Promise<PracticeSettingsRow | undefined> {
  return db.withPractice(practiceId, { kind: 'anonymous' }, findPracticeSettings);
}

/** A sign-in completed by the password alone (a practice that does not require a second factor): recorded and audited. */
export async function recordPasswordOnlySignIn(db: Db, practiceId: string, userId: string, meta: { ip: string; requestId: string; now: Date }): Promise<void> {
  await db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    await recordLogin(trx, userId, meta.now);
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, action: 'login', outcome: 'allowed', ip: meta.ip, requestId: meta.requestId, details: { mfa_required: false } });
  });
}

/** A staff member signing out: audited before the session ends. */
export async function recordSignOut(db: Db, practiceId: string, userId: string, meta: { ip: string; requestId: string }): Promise<void> {
  await db.withPractice(practiceId, { kind: 'user', id: userId }, (trx) =>
    audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, action: 'logout', outcome: 'allowed', ip: meta.ip, requestId: meta.requestId }),
  );
}

/** The signed-in (or signing-in) staff member's own account row. */
export function ownAccount(db: Db, practiceId: string, userId: string): Promise<UserRow | undefined> {
  return db.withPractice(practiceId, { kind: 'user', id: userId }, (trx) => findUserById(trx, userId));
}
