import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { hashPassword } from '../../auth/password-hash.js';
import { newTotpSecret, totpUri } from '../../auth/totp.js';
import type { KeyProvider, WrapContext } from '../../crypto/key-provider.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure } from '../../policies/index.js';
import { staffWork } from '../staff-work.js';
import {
  activeOperatorGrant,
  allOperatorSecrets,
  findOperatorByEmail,
  findOperatorById,
  findOperatorGrant,
  insertOperator,
  insertOperatorGrant,
  listOperatorGrants,
  operatorNames,
  practiceDirectory,
  revokeOperatorGrant,
  updateOperator,
  type DirectoryRow,
  type OperatorRow,
} from '../../queries/operators.queries.js';
import { findPracticeSettings, insertPractice, updatePracticeStatus, type PracticeSettingsRow } from '../../queries/practices.queries.js';
import { applySettings } from '../practices/practice-settings.service.js';
import { listUsers } from '../../queries/users.queries.js';
import { findPracticeRetention, markTerminated, type PracticeRetentionRow } from '../../queries/retention.queries.js';
import { jobRuns } from '../../queries/jobs.queries.js';
import { ensurePracticeDefaults } from '../practices/practice-defaults.js';
import type { StaffActor } from '../../policies/index.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { issueOwnerInvitation } from '../users/users.service.js';

/**
 * Platform operators: sign-in (password + TOTP, always), practice management (create, suspend,
 * settings) with no PHI anywhere, and the time-limited access a practice owner grants for a
 * support case. Operator actions on a practice are audited in that practice's log with actor
 * type "operator".
 */

/** The platform context under which the key provider wraps operator TOTP secrets (the installation's id). */
const totpContext = (operatorId: string): WrapContext => ({ practiceId: INSTALLATION_ID, purpose: `operator-totp|${operatorId}`, version: 1 });

export async function sealOperatorTotp(provider: KeyProvider, operatorId: string, secret: string): Promise<{ totp_kek_id: string; totp_wrapped: Buffer }> {
  const { kekId, wrapped } = await provider.wrap(Buffer.from(secret, 'utf8'), totpContext(operatorId));
  return { totp_kek_id: kekId, totp_wrapped: wrapped };
}

export async function openOperatorTotp(provider: KeyProvider, row: Pick<OperatorRow, 'id' | 'totp_kek_id' | 'totp_wrapped'>): Promise<string> {
  const bytes = await provider.unwrap(row.totp_kek_id, row.totp_wrapped, totpContext(row.id));
  return bytes.toString('utf8');
}

/** After a KEK change: re-wraps every operator's TOTP secret under the active KEK. */
export async function rewrapOperatorSecrets(knex: Knex, provider: KeyProvider): Promise<number> {
  let n = 0;
  for (const row of await allOperatorSecrets(knex)) {
    if (row.totp_kek_id === provider.activeKekId()) continue;
    const sealed = await sealOperatorTotp(provider, row.id, await openOperatorTotp(provider, row));
    await updateOperator(knex, row.id, sealed);
    n++;
  }
  return n;
}

/** Creates an operator (CLI, evaluation seed): returns the one-time password and TOTP secret to hand over. */
export async function createOperator(knex: Knex, provider: KeyProvider, input: { email: string; displayName: string }): Promise<{ id: string; password: string; secret: string; uri: string }> {
  const id = randomUUID();
  const password = randomBytes(18).toString('base64url');
  const secret = newTotpSecret();
  await insertOperator(knex, { id, email: input.email, display_name: input.displayName, password_hash: await hashPassword(password), ...(await sealOperatorTotp(provider, id, secret)) });
  return { id, password, secret, uri: totpUri(secret, input.email, 'Enamel operator') };
}

/** The signed-in operator, if still active and the session not revoked. */
export async function activeOperator(db: Db, operatorId: string, sessionCreatedAt: number): Promise<Pick<OperatorRow, 'id' | 'email' | 'display_name'> | undefined> {
  const op = await findOperatorById(db.knex, operatorId);
  if (!op || op.status !== 'active' || (op.sessions_valid_after && op.sessions_valid_after.getTime() > sessionCreatedAt)) return undefined;
  return { id: op.id, email: op.email, display_name: op.display_name };
}

export interface OperatorActor {
  kind: 'operator';
  id: string;
  email: string;
  displayName: string;
}

const operatorEvent = (op: OperatorActor, practiceId: string, meta: Meta) => ({ practiceId, actor: { kind: 'operator' as const, id: op.id }, ip: meta.ip, requestId: meta.requestId });

export function directory(db: Db): Promise<DirectoryRow[]> {
  return practiceDirectory(db.knex);
}

async function practiceOf(db: Db, id: string): Promise<DirectoryRow> {
  const p = (await practiceDirectory(db.knex)).find((x) => x.id === id);
  if (!p) throw new AccessDenied({ resource: { type: 'practice', id } });
  return p;
}

export interface NewPracticeInput {
  name: string;
  slug: string;
  locationName: string;
  phone: string;
  ownerName: string;
  ownerEmail: string;
}

/**
 * Creates a practice: the practice row, its settings, first location and default roles, and the
 * owner's account with a single-use invitation (the link is returned once, for the operator to hand
 * over). Audited in the new practice's log.
 */
export async function createPractice(db: Db, op: OperatorActor, input: NewPracticeInput, meta: Meta): Promise<FormResult<{ practiceId: string; invitationToken: string; expiresAt: Date }>> {
  if ((await practiceDirectory(db.knex)).some((p) => p.slug === input.slug)) return { ok: false, error: 'That address is taken; choose another.', field: 'slug' };
  const practiceId = randomUUID();
  const value = await db.withPractice(practiceId, { kind: 'operator', id: op.id }, async (trx) => {
    await insertPractice(trx, { id: practiceId, slug: input.slug, name: input.name, phone: input.phone, locationName: input.locationName });
    await ensurePracticeDefaults(trx, practiceId);
    const invitation = await issueOwnerInvitation(trx, practiceId, op.id, { email: input.ownerEmail, displayName: input.ownerName }, meta);
    await audit.record(trx, { ...operatorEvent(op, practiceId, meta), action: 'create', resource: { type: 'practice', id: practiceId }, outcome: 'allowed' });
    await audit.record(trx, { ...operatorEvent(op, practiceId, meta), action: 'user_invite', resource: { type: 'user', id: invitation.userId }, outcome: 'allowed' });
    return { practiceId, invitationToken: invitation.token, expiresAt: invitation.expiresAt };
  });
  return { ok: true, value };
}

export interface PracticeOverview {
  practice: DirectoryRow;
  settings?: PracticeSettingsRow;
  retention?: PracticeRetentionRow;
  /** Only while the practice has granted this operator access (support case): accounts, no PHI. */
  grant?: { caseReference: string; expiresAt: Date };
  users?: { displayName: string; email: string; status: string; mfa: boolean; lastLoginAt: Date | null }[];
}

export async function practiceOverview(db: Db, op: OperatorActor, id: string, meta: Meta): Promise<PracticeOverview> {
  const practice = await practiceOf(db, id);
  return db.withPractice(id, { kind: 'operator', id: op.id }, async (trx) => {
    const settings = await findPracticeSettings(trx);
    const retention = practice.status === 'terminated' ? undefined : await findPracticeRetention(trx);
    const grant = await activeOperatorGrant(trx, op.id, meta.now);
    if (!grant) return { practice, ...(settings ? { settings } : {}), ...(retention ? { retention } : {}) };
    // SECURITY: with a grant, account metadata for support (never patients); the look is audited.
    const users = await listUsers(trx);
    await audit.record(trx, { ...operatorEvent(op, id, meta), action: 'list', resource: { type: 'user' }, outcome: 'allowed', reason: 'support_case', details: { count: users.length, reference_id: grant.id } });
    return {
      practice,
      ...(settings ? { settings } : {}),
      ...(retention ? { retention } : {}),
      grant: { caseReference: grant.case_reference, expiresAt: grant.expires_at },
      users: users.map((u) => ({ displayName: u.display_name, email: u.email, status: u.status, mfa: Boolean(u.mfa_enrolled_at), lastLoginAt: u.last_login_at })),
    };
  });
}

/** Suspends (every page of the practice goes away, sessions with it) or re-activates a practice. */
export async function setPracticeStatus(db: Db, op: OperatorActor, id: string, status: 'active' | 'suspended', meta: Meta): Promise<void> {
  const practice = await practiceOf(db, id);
  if (practice.status === 'terminated') throw new AccessDenied({ resource: { type: 'practice', id } });
  await db.withPractice(id, { kind: 'operator', id: op.id }, async (trx) => {
    await updatePracticeStatus(trx, id, status);
    await audit.record(trx, { ...operatorEvent(op, id, meta), action: 'settings_change', resource: { type: 'practice', id }, outcome: 'allowed' });
  });
}

/**
 * Terminates a practice's service: it keeps working for the tail (30–60 days) so it can export its
 * data; then the retention job shreds its keys and purges its rows and files. Irreversible once the
 * tail has passed (an operator can still see the date here until then).
 */
export async function terminatePractice(db: Db, op: OperatorActor, id: string, tailDays: number, meta: Meta): Promise<FormResult<Date>> {
  const practice = await practiceOf(db, id);
  if (practice.status === 'terminated') throw new AccessDenied({ resource: { type: 'practice', id } });
  if (!Number.isInteger(tailDays) || tailDays < 30 || tailDays > 60) return { ok: false, error: 'The tail is 30 to 60 days.' };
  const purgeAfter = new Date(meta.now.getTime() + tailDays * 86_400_000);
  return db.withPractice(id, { kind: 'operator', id: op.id }, async (trx) => {
    if ((await markTerminated(trx, meta.now, purgeAfter)) === 0) return { ok: false, error: 'This practice is already terminated.' };
    await audit.record(trx, { ...operatorEvent(op, id, meta), action: 'practice_terminate', resource: { type: 'practice', id }, outcome: 'allowed', details: { count: tailDays } });
    return { ok: true, value: purgeAfter };
  });
}

/** The scheduler's recent runs, every job (counts only, never PHI). */
export function recentJobRuns(db: Db): Promise<{ id: string; job: string; trigger: string; started_at: Date; finished_at: Date | null; outcome: string | null; counts: Record<string, number> | null; error_type: string | null }[]> {
  return jobRuns(db.knex, 200);
}

/**
 * The retention settings an operator keeps for a practice (deleted-patient grace, inactivity,
 * audit retention ≥ 6 years); each change audited with old and new values. The security settings
 * (session limits, MFA, links, export threshold, contact) are the practice owner's.
 */
export async function updatePracticeSettings(db: Db, op: OperatorActor, id: string, s: { patientPurgeGraceDays: number; inactiveAccountDays: number; auditRetentionYears: number }, meta: Meta): Promise<number> {
  await practiceOf(db, id);
  return db.withPractice(id, { kind: 'operator', id: op.id }, async (trx) => {
    const before = await findPracticeSettings(trx);
    if (!before) throw new AccessDenied({ resource: { type: 'practice', id } });
    return applySettings(trx, before, { patient_purge_grace_days: s.patientPurgeGraceDays, inactive_account_days: s.inactiveAccountDays, audit_retention_years: s.auditRetentionYears }, (e) => ({ ...operatorEvent(op, id, meta), ...e }));
  });
}

// ——— The practice side: owners grant and revoke operator access ———

export interface GrantView {
  id: string;
  operator: string;
  caseReference: string;
  grantedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  active: boolean;
}

export async function listGrants(db: Db, actor: StaffActor, now: Date): Promise<GrantView[]> {
  ensure(authorize(actor, 'compliance.grantOperatorAccess'), { permission: 'compliance.manage' });
  const rows = await staffWork(db, actor, (trx) => listOperatorGrants(trx));
  const names = new Map((await operatorNames(db.knex, [...new Set(rows.map((r) => r.operator_id))])).map((o) => [o.id, `${o.display_name} <${o.email}>`]));
  return rows.map((r) => ({ id: r.id, operator: names.get(r.operator_id) ?? 'unknown operator', caseReference: r.case_reference, grantedAt: r.granted_at, expiresAt: r.expires_at, revokedAt: r.revoked_at, active: !r.revoked_at && r.expires_at > now }));
}

export const MAX_GRANT_HOURS = 72;

/** A time-limited grant for a support case (compliance.manage + step-up at the route). */
export async function grantOperatorAccess(db: Db, actor: StaffActor, input: { operatorEmail: string; caseReference: string; hours: number }, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'compliance.grantOperatorAccess'), { permission: 'compliance.manage' });
  const op = await findOperatorByEmail(db.knex, input.operatorEmail);
  if (!op || op.status !== 'active') return { ok: false, error: 'There is no active operator with that email address.', field: 'operatorEmail' };
  return staffWork(db, actor, async (trx) => {
    const id = randomUUID();
    await insertOperatorGrant(trx, { id, practice_id: actor.practiceId, operator_id: op.id, case_reference: input.caseReference, granted_by: actor.id, granted_at: meta.now, expires_at: new Date(meta.now.getTime() + input.hours * 3_600_000) });
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'operator_grant', resource: { type: 'operator_grant', id }, outcome: 'allowed', reason: 'support_case', ip: meta.ip, requestId: meta.requestId, details: { minutes: input.hours * 60, step_up: true } });
    return { ok: true, value: id };
  });
}

export async function revokeOperatorAccess(db: Db, actor: StaffActor, grantId: string, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'compliance.grantOperatorAccess'), { permission: 'compliance.manage' });
  await staffWork(db, actor, async (trx) => {
    if (!(await findOperatorGrant(trx, grantId))) throw new AccessDenied({ resource: { type: 'operator_grant', id: grantId } });
    await revokeOperatorGrant(trx, grantId, actor.id, meta.now);
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'operator_revoke', resource: { type: 'operator_grant', id: grantId }, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId });
  });
}
