import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit, type AuditEventInput } from '../../audit/record.js';
import { dummyHash, hashPassword, verifyPassword } from '../../auth/password-hash.js';
import { NEUTRAL_SIGNIN_MESSAGE } from '../../auth/signin.service.js';
import { accountFailure, accountRefusing, countIpFailure, ipBlocked } from '../../auth/throttle.js';
import { newTotpSecret, totpUri, verifyTotp } from '../../auth/totp.js';
import type { KeyProvider } from '../../crypto/key-provider.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { AccessDenied } from '../../policies/index.js';
import {
  deleteOperatorSessions,
  findOperatorByEmail,
  findOperatorByEmailForUpdate,
  findOperatorById,
  listOperators,
  revokeGrantsOfOperator,
  updateOperator,
  type OperatorListRow,
} from '../../queries/operators.queries.js';
import { allPracticeIds } from '../../queries/practices.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { openOperatorTotp, sealOperatorTotp, type OperatorActor } from './operators.service.js';

/**
 * Operators under the same controls as staff: sign-in through the shared throttle (per account and
 * per IP, scope `operator`), every success, failure and lockout audited in the installation's own
 * hash chain (INSTALLATION_ID: same sealer, checkpoints and `enamel audit verify`), a lockout raising
 * an installation alert, step-up before sensitive actions, and deactivation / reactivation (console
 * and CLI) that ends sessions and replaces the credentials.
 */

const installationEvent = (e: Omit<AuditEventInput, 'practiceId'>): AuditEventInput => ({ practiceId: INSTALLATION_ID, ...e });
const byOperator = (op: Pick<OperatorActor, 'id'>, meta: Pick<Meta, 'ip' | 'requestId'>) => ({ actor: { kind: 'operator' as const, id: op.id }, ip: meta.ip, requestId: meta.requestId });

/** One installation-level transaction (operators is a platform table; the audit rows are the installation's). */
export function installationWork<T>(db: Db, actor: AuditEventInput['actor'], work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.withPractice(INSTALLATION_ID, actor.kind === 'anonymous' ? { kind: 'anonymous' } : { kind: actor.kind, id: actor.id }, work);
}

export type OperatorSignIn = { ok: true; operatorId: string } | { ok: false; message: string };

/**
 * SECURITY: operator sign-in — email, password and TOTP code in one step (operators always use MFA).
 * The shared throttle: growing delay, a 15-minute lock after five failures in a row (an
 * installation alert), 30 failures from one address in 15 minutes block it; one neutral message.
 */
export async function operatorSignIn(db: Db, provider: KeyProvider, a: { email: string; password: string; code: string; ip: string; requestId: string; now: Date }): Promise<OperatorSignIn> {
  const failure = { ok: false, message: NEUTRAL_SIGNIN_MESSAGE } as const;
  if (await ipBlocked(db.knex, 'operator', a.ip, a.now)) {
    await verifyPassword(await dummyHash(), a.password);
    return failure;
  }
  const meta = { ip: a.ip, requestId: a.requestId };
  const result = await installationWork(db, { kind: 'anonymous' }, async (trx) => {
    const op = await findOperatorByEmailForUpdate(trx, a.email);
    const passwordOk = await verifyPassword(op?.password_hash ?? (await dummyHash()), a.password);
    const anonymous = { actor: { kind: 'anonymous' as const }, ...meta };
    if (!op || op.status !== 'active' || accountRefusing(op.locked_until, a.now)) {
      await audit.record(trx, installationEvent({ ...anonymous, action: 'login_failed', outcome: 'denied', ...(op ? { resource: { type: 'operator', id: op.id }, details: { count: op.failed_logins } } : {}) }));
      return 'failed' as const;
    }
    const step = passwordOk ? await verifyTotp(await openOperatorTotp(provider, op), a.code, { lastTimeStep: op.totp_last_step === null ? null : Number(op.totp_last_step), epochSeconds: Math.floor(a.now.getTime() / 1000) }) : undefined;
    if (step === undefined) {
      const { failures, lockedUntil, lockedNow } = accountFailure(op.failed_logins, a.now);
      await updateOperator(trx, op.id, { failed_logins: failures, locked_until: lockedUntil });
      await audit.record(trx, installationEvent({ ...anonymous, action: 'login_failed', outcome: 'denied', resource: { type: 'operator', id: op.id }, details: { count: failures } }));
      if (lockedNow) {
        await audit.record(trx, installationEvent({ actor: { kind: 'system', id: 'signin' }, ...meta, action: 'lockout', outcome: 'allowed', resource: { type: 'operator', id: op.id }, details: { count: failures } }));
        await raiseAlert(trx, { practiceId: INSTALLATION_ID, kind: 'signin_lockout', severity: 'warning', details: { target_type: 'operator', target_id: op.id, count: failures } });
      }
      return 'failed' as const;
    }
    await updateOperator(trx, op.id, { failed_logins: 0, locked_until: null, totp_last_step: String(step), last_login_at: a.now });
    await audit.record(trx, installationEvent({ ...byOperator(op, meta), action: 'login', outcome: 'allowed', resource: { type: 'operator', id: op.id } }));
    return op.id;
  });
  if (result === 'failed') {
    await countIpFailure(db.knex, 'operator', a.ip, a.now);
    return failure;
  }
  return { ok: true, operatorId: result };
}

/** An operator signs out (audited in the installation's chain). */
export async function operatorSignedOut(db: Db, operatorId: string, meta: Pick<Meta, 'ip' | 'requestId'>): Promise<void> {
  await installationWork(db, { kind: 'operator', id: operatorId }, (trx) => audit.record(trx, installationEvent({ ...byOperator({ id: operatorId }, meta), action: 'logout', outcome: 'allowed', resource: { type: 'operator', id: operatorId } })));
}

/** Step-up for an operator: the password and a fresh TOTP code again (audited). */
export async function operatorStepUp(db: Db, provider: KeyProvider, operatorId: string, input: { password: string; code: string }, meta: Meta): Promise<boolean> {
  return installationWork(db, { kind: 'operator', id: operatorId }, async (trx) => {
    const op = await findOperatorById(trx, operatorId);
    let ok = Boolean(op && op.status === 'active' && (await verifyPassword(op.password_hash, input.password)));
    let step: number | undefined;
    if (ok && op) {
      step = await verifyTotp(await openOperatorTotp(provider, op), input.code, { lastTimeStep: op.totp_last_step === null ? null : Number(op.totp_last_step), epochSeconds: Math.floor(meta.now.getTime() / 1000) });
      ok = step !== undefined;
    }
    if (ok && step !== undefined) await updateOperator(trx, operatorId, { totp_last_step: String(step) });
    await audit.record(trx, installationEvent({ ...byOperator({ id: operatorId }, meta), action: 'step_up', outcome: ok ? 'allowed' : 'denied', resource: { type: 'operator', id: operatorId } }));
    return ok;
  });
}

export interface OperatorView {
  id: string;
  email: string;
  displayName: string;
  status: 'active' | 'deactivated';
  lastLoginAt: Date | null;
  createdAt: Date;
  self: boolean;
}

export async function operatorAccounts(db: Db, op: OperatorActor): Promise<OperatorView[]> {
  return (await listOperators(db.knex)).map((o: OperatorListRow) => ({ id: o.id, email: o.email, displayName: o.display_name, status: o.status, lastLoginAt: o.last_login_at, createdAt: o.created_at, self: o.id === op.id }));
}

/** Who does it: an operator at the console, or the CLI (a system token). */
export type OperatorChangeActor = { kind: 'operator'; id: string } | { kind: 'operator'; cli: string };

const actorOf = (by: OperatorChangeActor): AuditEventInput['actor'] => ('cli' in by ? { kind: 'operator', id: `cli-${by.cli}` } : { kind: 'operator', id: by.id });

async function destroyCredentials(trx: Knex.Transaction, provider: KeyProvider, id: string): Promise<void> {
  // NOTE: the columns are NOT NULL: a random password nobody knows and a fresh secret nobody holds.
  await updateOperator(trx, id, { password_hash: await hashPassword(randomBytes(32).toString('base64url')), ...(await sealOperatorTotp(provider, id, newTotpSecret())), totp_last_step: null });
}

/**
 * Deactivates an operator: status, every session ended now, password and TOTP secret replaced by
 * unknown ones, and every running support grant in every practice revoked; each step audited. Not
 * oneself, and never the last active operator (the installation would have nobody to run it).
 */
export async function deactivateOperator(
  db: Db,
  provider: KeyProvider,
  by: OperatorChangeActor,
  targetId: string,
  meta: Meta,
  /** More work for the same installation transaction (the access review records its decision there). */
  alsoInTransaction?: (trx: Knex.Transaction) => Promise<void>,
): Promise<FormResult<{ sessions: number; grants: number }>> {
  const target = await findOperatorById(db.knex, targetId);
  if (!target) throw new AccessDenied({ resource: { type: 'operator', id: targetId } });
  if ('id' in by && by.id === targetId) return { ok: false, error: 'You cannot deactivate your own account; ask another operator.' };
  if (target.status !== 'active') return { ok: false, error: 'This operator is already deactivated.' };
  const others = (await listOperators(db.knex)).filter((o) => o.status === 'active' && o.id !== targetId);
  if (others.length === 0) return { ok: false, error: 'This is the last active operator; create another one first (`enamel operators create`).' };
  const actor = actorOf(by);
  const base = { actor, ip: meta.ip, requestId: meta.requestId };
  const sessions = await installationWork(db, actor, async (trx) => {
    await updateOperator(trx, targetId, { status: 'deactivated', sessions_valid_after: meta.now, failed_logins: 0, locked_until: null });
    await destroyCredentials(trx, provider, targetId);
    const ended = await deleteOperatorSessions(trx, targetId);
    await audit.record(trx, installationEvent({ ...base, action: 'user_deactivate', outcome: 'allowed', resource: { type: 'operator', id: targetId }, details: { count: ended } }));
    await audit.record(trx, installationEvent({ ...base, action: 'session_revoke', outcome: 'allowed', resource: { type: 'operator', id: targetId }, details: { count: ended } }));
    await audit.record(trx, installationEvent({ ...base, action: 'mfa_destroy', outcome: 'allowed', resource: { type: 'operator', id: targetId } }));
    await alsoInTransaction?.(trx);
    return ended;
  });
  let grants = 0;
  for (const practiceId of await allPracticeIds(db.knex)) {
    grants += await db.withPractice(practiceId, actor, async (trx) => {
      const n = await revokeGrantsOfOperator(trx, targetId, 'id' in by ? by.id : targetId, meta.now);
      if (n > 0) await audit.record(trx, { practiceId, ...base, action: 'operator_revoke', outcome: 'allowed', resource: { type: 'operator_grant' }, details: { count: n, target_type: 'operator', target_id: targetId } });
      return n;
    });
  }
  return { ok: true, value: { sessions, grants } };
}

/** Reactivates an operator with a new one-time password and TOTP secret (shown once, to hand over in person). */
export async function reactivateOperator(db: Db, provider: KeyProvider, by: OperatorChangeActor, targetId: string, meta: Meta): Promise<FormResult<{ email: string; password: string; secret: string; uri: string }>> {
  const target = await findOperatorById(db.knex, targetId);
  if (!target) throw new AccessDenied({ resource: { type: 'operator', id: targetId } });
  if (target.status === 'active') return { ok: false, error: 'This operator is active.' };
  const actor = actorOf(by);
  const password = randomBytes(18).toString('base64url');
  const secret = newTotpSecret();
  await installationWork(db, actor, async (trx) => {
    await updateOperator(trx, targetId, { status: 'active', password_hash: await hashPassword(password), ...(await sealOperatorTotp(provider, targetId, secret)), totp_last_step: null, failed_logins: 0, locked_until: null, sessions_valid_after: meta.now });
    await audit.record(trx, installationEvent({ actor, ip: meta.ip, requestId: meta.requestId, action: 'user_reactivate', outcome: 'allowed', resource: { type: 'operator', id: targetId } }));
  });
  return { ok: true, value: { email: target.email, password, secret, uri: totpUri(secret, target.email, 'Enamel operator') } };
}

/** An operator's id by email (the CLI names operators by email). */
export async function operatorIdByEmail(db: Db, email: string): Promise<string | undefined> {
  return (await findOperatorByEmail(db.knex, email))?.id;
}
