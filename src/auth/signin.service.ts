import type { Knex } from 'knex';
import { raiseAlert } from '../alerts/alerts.js';
import { audit } from '../audit/record.js';
import type { Db } from '../db/tenant.js';
import { findUserByEmailForUpdate, mustReenroll, recordFailedSignIn, recordSuccessfulPassword, type UserRow } from '../queries/users.queries.js';
import { dummyHash, verifyPassword } from './password-hash.js';
import { mfaRequiredFor } from '../policies/actor.js';
import { permissionsOfUser } from '../queries/roles.queries.js';

/**
 * The password step of staff sign-in. Documented limits (README "Sign-in"):
 *  - per account: a growing delay after each failure (1, 2, 4, 8 s), then a 15-minute lock after
 *    SIGNIN_MAX_FAILURES (5) in a row; the owner is alerted at the lock;
 *  - per IP: 30 failures within 15 minutes block that address for 15 minutes;
 *  - the same neutral answer, after the same argon2 work, whether the account exists, is
 *    deactivated, locked, or the password is wrong.
 * State lives in PostgreSQL, so every replica enforces the same counters.
 */
export const SIGNIN_MAX_FAILURES = 5;
export const SIGNIN_LOCK_MS = 15 * 60_000;
export const IP_MAX_FAILURES = 30;
export const IP_WINDOW_MS = 15 * 60_000;

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

export function growingDelayMs(failures: number): number {
  return Math.min(8_000, 1000 * 2 ** (failures - 1));
}

export async function ipBlocked(knex: Knex, ip: string, now: Date): Promise<boolean> {
  const row = await knex('signin_ip_throttle').where({ ip }).first<{ blocked_until: Date | null } | undefined>('blocked_until');
  return Boolean(row?.blocked_until && row.blocked_until > now);
}

export async function countIpFailure(knex: Knex, ip: string, now: Date): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx('signin_ip_throttle').insert({ ip, failures: 0, window_started_at: now }).onConflict('ip').ignore();
    const row = await trx('signin_ip_throttle').where({ ip }).forUpdate().first<{ failures: number; window_started_at: Date; blocked_until: Date | null }>('failures', 'window_started_at', 'blocked_until');
    const expired = row.window_started_at.getTime() < now.getTime() - IP_WINDOW_MS;
    const failures = expired ? 1 : row.failures + 1;
    await trx('signin_ip_throttle')
      .where({ ip })
      .update({
        failures,
        window_started_at: expired ? now : row.window_started_at,
        blocked_until: failures >= IP_MAX_FAILURES ? new Date(now.getTime() + IP_WINDOW_MS) : row.blocked_until,
      });
  });
}

/** SECURITY: one answer for every failure; the reason goes to the audit log only (as a code). */
export async function passwordStep(db: Db, a: SignInAttempt): Promise<PasswordStepResult> {
  const failure = { ok: false, message: NEUTRAL_SIGNIN_MESSAGE } as const;
  if (await ipBlocked(db.knex, a.ip, a.now)) {
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
    if (user.locked_until && user.locked_until > a.now) {
      await audit.record(trx, { ...base, action: 'login_failed', outcome: 'denied', resource: { type: 'user', id: user.id }, details: { count: user.failed_logins } });
      return 'failed' as const;
    }
    if (!passwordOk) {
      const failures = user.failed_logins + 1;
      const locked = failures >= SIGNIN_MAX_FAILURES;
      await recordFailedSignIn(trx, user.id, failures, new Date(a.now.getTime() + (locked ? SIGNIN_LOCK_MS : growingDelayMs(failures))));
      await audit.record(trx, { ...base, action: 'login_failed', outcome: 'denied', resource: { type: 'user', id: user.id }, details: { count: failures } });
      if (locked && failures === SIGNIN_MAX_FAILURES) {
        await audit.record(trx, { ...base, actor: { kind: 'system', id: 'signin' }, action: 'lockout', outcome: 'allowed', resource: { type: 'user', id: user.id }, details: { count: failures } });
        // SECURITY: the owner learns of it on the dashboard (and by email once messaging exists).
        await raiseAlert(trx, { practiceId: a.practiceId, kind: 'signin_lockout', severity: 'warning', details: { target_type: 'user', target_id: user.id, count: failures } });
      }
      return 'failed' as const;
    }
    await recordSuccessfulPassword(trx, user.id);
    return { user, privileged: mfaRequiredFor(await permissionsOfUser(trx, user.id), user.is_owner) || mustReenroll(user) };
  });
  if (outcome === 'failed') {
    await countIpFailure(db.knex, a.ip, a.now);
    return failure;
  }
  return { ok: true, userId: outcome.user.id, next: nextFactor(outcome.user, outcome.privileged || a.mfaRequiredForAll) };
}

/** After the password: verify TOTP if enrolled; enrol first if MFA is required; else done. */
export function nextFactor(user: Pick<UserRow, 'mfa_enrolled_at'>, mfaRequired: boolean): 'totp' | 'enroll' | 'done' {
  if (user.mfa_enrolled_at) return 'totp';
  return mfaRequired ? 'enroll' : 'done';
}
