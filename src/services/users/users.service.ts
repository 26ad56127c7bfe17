import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { hashPassword } from '../../auth/password-hash.js';
import { checkPassword, PASSWORD_MESSAGES } from '../../auth/password-policy.js';
import type { Db } from '../../db/tenant.js';
import { authorize, ensure, AccessDenied, type StaffActor } from '../../policies/index.js';
import type { UserRecord } from '../../policies/user.policy.js';
import { findCurrentPractice, listLocations } from '../../queries/practices.queries.js';
import { findRole, listRoles, locationIdsOfUsers, roleIdsOfUsers, setUserLocations, setUserRoles, type RoleRow } from '../../queries/roles.queries.js';
import {
  deleteRecoveryCodes,
  deleteSessionsOfPractice,
  deleteSessionsOfUser,
  revokeAllSessionsExcept,
  emailTaken,
  findInvitationByHashForUpdate,
  findUserById,
  insertInvitation,
  insertUser,
  listUsers,
  markInvitationUsed,
  updateUser,
  type DeactivationSteps,
  type UserRow,
} from '../../queries/users.queries.js';
import { deactivateWithChecklist } from './deactivation.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { accessOfAccounts } from './account-access.js';

/**
 * Staff accounts as administrators manage them: the users overview, invitations (single-use,
 * expiring links stored as SHA-256 hashes), role and location assignment, deactivation and
 * reactivation, ending a user's sessions and resetting their MFA. Every change is authorized by
 * policies/user.policy.ts and policies/role.policy.ts and audited in the same transaction.
 */

export const INVITATION_TTL_MS = 72 * 3_600_000;


export interface UserOverview {
  id: string;
  displayName: string;
  email: string;
  status: UserRow['status'];
  isOwner: boolean;
  mfa: boolean;
  lastLoginAt: Date | null;
  /** Until when sign-in is locked after repeated failures (only when it still is). */
  lockedUntil: Date | null;
  roles: string[];
  locations: string[];
}

/** The facts of an account both the users page and one account's page show. */
const accountFacts = (u: Pick<UserRow, 'id' | 'display_name' | 'email' | 'status' | 'is_owner' | 'mfa_enrolled_at' | 'last_login_at' | 'locked_until'>, now: Date) => ({
  id: u.id,
  displayName: u.display_name,
  email: u.email,
  status: u.status,
  isOwner: u.is_owner,
  mfa: Boolean(u.mfa_enrolled_at),
  lastLoginAt: u.last_login_at,
  lockedUntil: u.locked_until && u.locked_until > now && u.status === 'active' ? u.locked_until : null,
});

const tokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');



/** SECURITY: the target user, in the actor's practice (RLS) — or AccessDenied (shown as not found). */
async function target(trx: Knex.Transaction, actor: StaffActor, id: string): Promise<UserRow & { record: UserRecord }> {
  const user = await findUserById(trx, id);
  if (!user) throw new AccessDenied({ resource: { type: 'user', id } });
  return { ...user, record: { practiceId: user.practice_id, id: user.id, isOwner: user.is_owner } };
}

/** The access-review overview: every account with roles, locations, MFA, last sign-in, status. */
export async function usersOverview(db: Db, actor: StaffActor, meta: Meta): Promise<UserOverview[]> {
  ensure(authorize(actor, 'user.index'), { permission: 'users.manage' });
  return work(db, actor, async (trx) => {
    const users = await listUsers(trx);
    const access = await accessOfAccounts(trx, users);
    await audit.record(trx, event(actor, meta, { action: 'list', outcome: 'allowed', resource: { type: 'user' }, details: { count: users.length } }));
    return users.map((u) => ({ ...accountFacts(u, meta.now), roles: access.get(u.id)?.roleNames ?? [], locations: access.get(u.id)?.locationNames ?? [] }));
  });
}

export interface AccessChoices {
  roles: (RoleRow & { assignable: boolean })[];
  locations: { id: string; name: string }[];
}

/** Roles (marking those this actor may assign) and locations, for the invite and access forms. */
export async function accessChoices(db: Db, actor: StaffActor): Promise<AccessChoices> {
  return work(db, actor, async (trx) => {
    const roles = (await listRoles(trx)).filter((r) => !r.is_system);
    const locations = await listLocations(trx);
    return {
      roles: roles.map((r) => ({ ...r, assignable: authorize(actor, 'role.assign', { practiceId: actor.practiceId, id: r.id, isSystem: r.is_system, permissions: r.permissions }) })),
      locations: locations.map((l) => ({ id: l.id, name: l.name })),
    };
  });
}

/** One account for its page: the overview's facts, with role and location ids for the form. */
export type UserDetail = Omit<UserOverview, 'roles' | 'locations'> & { roleIds: string[]; locationIds: string[] };

export async function userDetail(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<UserDetail> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.show', u.record), { resource: { type: 'user', id } });
    await audit.record(trx, event(actor, meta, { action: 'view', outcome: 'allowed', resource: { type: 'user', id } }));
    return {
      ...accountFacts(u, meta.now),
      roleIds: (await roleIdsOfUsers(trx, [id])).get(id) ?? [],
      locationIds: (await locationIdsOfUsers(trx, [id])).get(id) ?? [],
    };
  });
}

/** A form's outcome: the value, or a message for the form (`refused`: a permission problem, 403). */

/**
 * SECURITY: checks a set of role ids for assignment by this actor: each must exist in the practice
 * and grant nothing the actor lacks; changed roles only (an untouched role the actor could not
 * assign stays as it was). Returns an error for the form, or undefined.
 */
type Problem = { ok: false; error: string; field?: string; refused?: boolean };

async function checkRoleChange(trx: Knex.Transaction, actor: StaffActor, before: readonly string[], after: readonly string[]): Promise<Problem | undefined> {
  const changed = [...after.filter((id) => !before.includes(id)), ...before.filter((id) => !after.includes(id))];
  for (const id of changed) {
    const role = await findRole(trx, id);
    if (!role || role.is_system) return { ok: false, error: 'Choose roles from the list.', field: 'roleIds' };
    if (!authorize(actor, 'role.assign', { practiceId: actor.practiceId, id: role.id, isSystem: role.is_system, permissions: role.permissions })) {
      return { ok: false, error: `You cannot assign or remove the role “${role.name}”: it grants permissions you do not hold yourself.`, field: 'roleIds', refused: true };
    }
  }
  return undefined;
}

async function checkLocations(trx: Knex.Transaction, ids: readonly string[]): Promise<Problem | undefined> {
  const known = new Set((await listLocations(trx)).map((l) => l.id));
  return ids.every((id) => known.has(id)) ? undefined : { ok: false, error: 'Choose locations from the list.', field: 'locationIds' };
}

/**
 * Invites a person: creates the account (status invited) with roles and locations, and a
 * single-use link valid for 72 hours. Returns the token once (only its hash is stored).
 */
export async function inviteUser(
  db: Db,
  actor: StaffActor,
  input: { email: string; displayName: string; roleIds: string[]; locationIds: string[] },
  meta: Meta,
): Promise<FormResult<{ userId: string; token: string; expiresAt: Date }>> {
  ensure(authorize(actor, 'user.invite'), { permission: 'users.manage' });
  return work(db, actor, async (trx) => {
    if (await emailTaken(trx, input.email)) return { ok: false, error: 'Someone in this practice already has that email address.', field: 'email' };
    if (input.roleIds.length === 0) return { ok: false, error: 'Choose at least one role.', field: 'roleIds' };
    const problem = (await checkRoleChange(trx, actor, [], input.roleIds)) ?? (await checkLocations(trx, input.locationIds));
    if (problem) return problem;
    const userId = randomUUID();
    await insertUser(trx, { id: userId, practice_id: actor.practiceId, email: input.email, display_name: input.displayName, status: 'invited', is_owner: false, password_hash: null });
    await setUserRoles(trx, actor.practiceId, userId, input.roleIds);
    await setUserLocations(trx, actor.practiceId, userId, input.locationIds);
    const invitation = await issueInvitation(trx, actor.practiceId, actor.id, userId, meta);
    await audit.record(trx, event(actor, meta, { action: 'user_invite', outcome: 'allowed', resource: { type: 'user', id: userId }, details: { count: input.roleIds.length } }));
    return { ok: true, value: { userId, ...invitation } };
  });
}

/** A single-use link (256 random bits; only its SHA-256 is stored), replacing any earlier one. */
async function issueInvitation(trx: Knex.Transaction, practiceId: string, createdBy: string, userId: string, meta: Meta): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(meta.now.getTime() + INVITATION_TTL_MS);
  await insertInvitation(trx, { practice_id: practiceId, user_id: userId, token_hash: tokenHash(token), created_by: createdBy, expires_at: expiresAt });
  return { token, expiresAt };
}

/**
 * The first owner of a new practice (operator-created): an invited owner account and its link.
 * Runs in the practice-creation transaction.
 */
export async function issueOwnerInvitation(trx: Knex.Transaction, practiceId: string, createdBy: string, input: { email: string; displayName: string }, meta: Meta): Promise<{ userId: string; token: string; expiresAt: Date }> {
  const userId = randomUUID();
  await insertUser(trx, { id: userId, practice_id: practiceId, email: input.email, display_name: input.displayName, status: 'invited', is_owner: true, password_hash: null });
  return { userId, ...(await issueInvitation(trx, practiceId, createdBy, userId, meta)) };
}

/** A new invitation link for someone who has not accepted yet (the old link stops working). */
export async function reinviteUser(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<FormResult<{ token: string; expiresAt: Date }>> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.update', u.record), { resource: { type: 'user', id } });
    if (u.status !== 'invited') return { ok: false, error: 'This person has already accepted their invitation.' };
    const invitation = await issueInvitation(trx, actor.practiceId, actor.id, id, meta);
    await audit.record(trx, event(actor, meta, { action: 'user_invite', outcome: 'allowed', resource: { type: 'user', id } }));
    return { ok: true, value: invitation };
  });
}

/** Changes a user's roles and locations. Takes effect on that user's next request. */
export async function updateAccess(db: Db, actor: StaffActor, id: string, input: { roleIds: string[]; locationIds: string[] }, meta: Meta): Promise<FormResult<null>> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.update', u.record), { resource: { type: 'user', id } });
    const before = (await roleIdsOfUsers(trx, [id])).get(id) ?? [];
    const problem = (await checkRoleChange(trx, actor, before, input.roleIds)) ?? (await checkLocations(trx, input.locationIds));
    if (problem) {
      await audit.record(trx, event(actor, meta, { action: 'role_change', outcome: 'denied', resource: { type: 'user', id } }));
      return problem;
    }
    await setUserRoles(trx, actor.practiceId, id, input.roleIds);
    await setUserLocations(trx, actor.practiceId, id, input.locationIds);
    await audit.record(trx, event(actor, meta, { action: 'role_change', outcome: 'allowed', resource: { type: 'user', id }, details: { count: input.roleIds.length } }));
    return { ok: true, value: null };
  });
}

/**
 * Deactivates an account, as a checklist: every session ends at once, the TOTP secret and recovery
 * codes are destroyed, open invitations and patient links it created are revoked; each step audited.
 */
export async function deactivateUser(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<DeactivationSteps> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.deactivate', u.record), { resource: { type: 'user', id } });
    return deactivateWithChecklist(trx, actor.practiceId, id, 'manual', meta.now, (e) => event(actor, meta, e));
  });
}

/** Reactivates a deactivated account (an invited one stays invited until it is accepted); its owner enrols a second factor again at the next sign-in. */
export async function reactivateUser(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<FormResult<null>> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.reactivate', u.record), { resource: { type: 'user', id } });
    if (u.status !== 'deactivated') return { ok: false, error: 'This account is not deactivated.' };
    await updateUser(trx, id, { status: u.password_hash ? 'active' : 'invited', deactivated_reason: null, failed_logins: 0, locked_until: null });
    await audit.record(trx, event(actor, meta, { action: 'user_reactivate', outcome: 'allowed', resource: { type: 'user', id } }));
    return { ok: true, value: null };
  });
}

/** Lifts a sign-in lock early (the person called; the alert was looked into). Audited. */
export async function unlockUser(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<FormResult<null>> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.update', u.record), { resource: { type: 'user', id } });
    if (!u.locked_until || u.locked_until <= meta.now) return { ok: false, error: 'This account is not locked.' };
    await updateUser(trx, id, { failed_logins: 0, locked_until: null });
    await audit.record(trx, event(actor, meta, { action: 'user_unlock', outcome: 'allowed', resource: { type: 'user', id }, details: { count: u.failed_logins } }));
    return { ok: true, value: null };
  });
}

/** Ends every session of a user now (they sign in again). */
export async function endUserSessions(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<number> {
  return work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.endSessions', u.record), { resource: { type: 'user', id } });
    await updateUser(trx, id, { sessions_valid_after: meta.now });
    const ended = await deleteSessionsOfUser(trx, actor.practiceId, id);
    await audit.record(trx, event(actor, meta, { action: 'session_revoke', outcome: 'allowed', resource: { type: 'user', id }, details: { count: ended } }));
    return ended;
  });
}

/** Ends every session in the practice except the administrator's own (e.g. after a suspected breach). */
export async function endAllSessions(db: Db, actor: StaffActor, currentSid: string, meta: Meta): Promise<number> {
  ensure(authorize(actor, 'user.index'), { permission: 'users.manage' });
  return work(db, actor, async (trx) => {
    await revokeAllSessionsExcept(trx, actor.id, meta.now);
    const ended = await deleteSessionsOfPractice(trx, actor.practiceId, currentSid);
    await audit.record(trx, event(actor, meta, { action: 'session_revoke', outcome: 'allowed', resource: { type: 'session' }, details: { count: ended, step_up: true } }));
    return ended;
  });
}

/**
 * Resets a user's MFA (lost phone): secret and recovery codes removed, sessions ended, and the user
 * must enrol again at the next sign-in. The route demands the administrator's own recent step-up.
 */
export async function resetUserMfa(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<void> {
  await work(db, actor, async (trx) => {
    const u = await target(trx, actor, id);
    ensure(authorize(actor, 'user.resetMfa', u.record), { resource: { type: 'user', id } });
    await updateUser(trx, id, { totp_secret: null, totp_last_step: null, mfa_enrolled_at: null, mfa_reset_at: meta.now, sessions_valid_after: meta.now });
    await deleteRecoveryCodes(trx, id);
    await deleteSessionsOfUser(trx, actor.practiceId, id);
    await audit.record(trx, event(actor, meta, { action: 'mfa_reset', outcome: 'allowed', resource: { type: 'user', id }, details: { step_up: true } }));
  });
}

export type InvitationState = { ok: true; userId: string; email: string; displayName: string } | { ok: false };

/** An invitation link's state, without using it. */
export async function checkInvitation(db: Db, practiceId: string, token: string, now: Date): Promise<InvitationState> {
  return db.withPractice(practiceId, { kind: 'anonymous' }, async (trx) => {
    const inv = await findInvitationByHashForUpdate(trx, tokenHash(token));
    if (!inv || inv.used_at || inv.revoked_at || inv.expires_at <= now) return { ok: false };
    const user = await findUserById(trx, inv.user_id);
    if (!user || user.status !== 'invited') return { ok: false };
    return { ok: true, userId: user.id, email: user.email, displayName: user.display_name };
  });
}

/**
 * Accepts an invitation: the password must pass the policy; the link is used up; the account is
 * active. MFA enrolment follows at the first sign-in when it is required (the link never skips it).
 */
export async function acceptInvitation(db: Db, practiceId: string, token: string, password: string, meta: Meta): Promise<FormResult<null> | { ok: false; gone: true }> {
  return db.withPractice(practiceId, { kind: 'anonymous' }, async (trx) => {
    const inv = await findInvitationByHashForUpdate(trx, tokenHash(token));
    const user = inv && (await findUserById(trx, inv.user_id));
    if (!inv || !user || inv.used_at || inv.revoked_at || inv.expires_at <= meta.now || user.status !== 'invited') return { ok: false, gone: true };
    const practice = await findCurrentPractice(trx);
    const problem = checkPassword(password, { practiceName: practice?.name, email: user.email });
    if (problem) return { ok: false, error: PASSWORD_MESSAGES[problem] };
    await markInvitationUsed(trx, inv.id, meta.now);
    await updateUser(trx, user.id, { status: 'active', password_hash: await hashPassword(password), password_changed_at: meta.now });
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: user.id }, action: 'password_change', outcome: 'allowed', resource: { type: 'user', id: user.id }, ip: meta.ip, requestId: meta.requestId, details: { reference_id: inv.id } });
    return { ok: true, value: null };
  });
}
