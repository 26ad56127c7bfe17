import { randomBytes } from 'node:crypto';
import { audit } from '../../audit/record.js';
import type { Db } from '../../db/tenant.js';
import { ALL_PERMISSIONS, PERMISSIONS, type Permission } from '../../permissions.js';
import { authorize, ensure, AccessDenied, type StaffActor } from '../../policies/index.js';
import type { RoleRecord } from '../../policies/role.policy.js';
import { countHolders, findRole, insertRole, listRoles, roleNameTaken, updateRole, type RoleRow } from '../../queries/roles.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { staffWork as work } from '../staff-work.js';

/**
 * The practice's roles: the permission matrix, new roles, edits. SECURITY: nobody grants a
 * permission they do not hold (policies/role.policy.ts), the owner role is fixed, and every change
 * is audited; holders get the change on their next request.
 */

export interface RoleView extends RoleRow {
  holders: number;
  /** The actor may edit this role (not the owner role; nothing in it beyond the actor's own permissions). */
  editable: boolean;
}

export interface RolesMatrix {
  roles: RoleView[];
  permissions: { name: Permission; description: string; held: boolean }[];
}

const record = (actor: StaffActor, r: RoleRow): RoleRecord => ({ practiceId: actor.practiceId, id: r.id, isSystem: r.is_system, permissions: r.permissions });


export async function rolesMatrix(db: Db, actor: StaffActor): Promise<RolesMatrix> {
  ensure(authorize(actor, 'role.index'), { permission: 'roles.manage' });
  return work(db, actor, async (trx) => {
    const roles = await listRoles(trx);
    const views: RoleView[] = [];
    for (const r of roles) views.push({ ...r, holders: await countHolders(trx, r.id), editable: authorize(actor, 'role.update', record(actor, r), { permissions: r.permissions }) });
    return { roles: views, permissions: ALL_PERMISSIONS.map((name) => ({ name, description: PERMISSIONS[name], held: actor.permissions.has(name) })) };
  });
}

export async function roleForEdit(db: Db, actor: StaffActor, id: string): Promise<RoleView> {
  return work(db, actor, async (trx) => {
    const role = await findRole(trx, id);
    if (!role) throw new AccessDenied({ resource: { type: 'role', id } });
    const editable = authorize(actor, 'role.update', record(actor, role), { permissions: role.permissions });
    ensure(authorize(actor, 'role.index'), { resource: { type: 'role', id } });
    return { ...role, holders: await countHolders(trx, id), editable };
  });
}

export interface RoleInput {
  name: string;
  description: string;
  permissions: Permission[];
}

const escalation = (actor: StaffActor, permissions: readonly Permission[]): string | undefined => {
  const missing = permissions.filter((p) => !actor.permissions.has(p));
  return missing.length ? `You cannot grant permissions you do not hold yourself: ${missing.join(', ')}.` : undefined;
};

export async function createRole(db: Db, actor: StaffActor, input: RoleInput, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'role.index'), { permission: 'roles.manage' });
  return work(db, actor, async (trx) => {
    const refused = escalation(actor, input.permissions);
    if (refused || !authorize(actor, 'role.create', input)) {
      await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'role_change', outcome: 'denied', resource: { type: 'role' }, ip: meta.ip, requestId: meta.requestId, details: { count: input.permissions.length } });
      return { ok: false, error: refused ?? 'You cannot create roles.', field: 'permissions', refused: true };
    }
    if (await roleNameTaken(trx, input.name)) return { ok: false, error: 'A role with that name already exists.', field: 'name' };
    const id = await insertRole(trx, { practice_id: actor.practiceId, key: `custom_${randomBytes(6).toString('hex')}`, name: input.name, description: input.description, permissions: input.permissions, is_system: false });
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'role_change', outcome: 'allowed', resource: { type: 'role', id }, ip: meta.ip, requestId: meta.requestId, details: { count: input.permissions.length } });
    return { ok: true, value: id };
  });
}

export async function changeRole(db: Db, actor: StaffActor, id: string, input: RoleInput, meta: Meta): Promise<FormResult<null>> {
  return work(db, actor, async (trx) => {
    const role = await findRole(trx, id);
    if (!role) throw new AccessDenied({ resource: { type: 'role', id } });
    const base = { practiceId: actor.practiceId, actor: { kind: 'user' as const, id: actor.id }, action: 'role_change' as const, resource: { type: 'role' as const, id }, ip: meta.ip, requestId: meta.requestId };
    if (!authorize(actor, 'role.update', record(actor, role), input)) {
      await audit.record(trx, { ...base, outcome: 'denied', details: { count: input.permissions.length } });
      const missingBefore = role.permissions.filter((p) => !actor.permissions.has(p));
      const reason = role.is_system
        ? 'The owner role always holds every permission and cannot be changed.'
        : (escalation(actor, input.permissions) ?? (missingBefore.length ? `This role holds permissions you do not hold yourself (${missingBefore.join(', ')}), so you cannot change it.` : 'You cannot change this role.'));
      return { ok: false, error: reason, refused: true };
    }
    if (await roleNameTaken(trx, input.name, id)) return { ok: false, error: 'A role with that name already exists.', field: 'name' };
    await updateRole(trx, id, input);
    await audit.record(trx, { ...base, outcome: 'allowed', details: { count: input.permissions.length } });
    return { ok: true, value: null };
  });
}
