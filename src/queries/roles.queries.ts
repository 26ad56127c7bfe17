import type { Knex } from 'knex';
import { permissionsOfRole, type Permission } from '../permissions.js';

/** The only SQL touching roles and user ↔ role ↔ location assignments. Runs inside withPractice. */

export interface RoleRow {
  id: string;
  key: string;
  name: string;
  description: string;
  permissions: Permission[];
  is_system: boolean;
}

/**
 * SECURITY: what a stored role grants. The system owner role is every permission of this build;
 * a stored name unknown to this build grants nothing.
 */
const granted = permissionsOfRole;

const toRole = (row: Omit<RoleRow, 'permissions'> & { permissions: string[] }): RoleRow => ({ ...row, permissions: granted(row) });

export async function listRoles(trx: Knex.Transaction): Promise<RoleRow[]> {
  const rows = await trx('roles').orderBy([{ column: 'is_system', order: 'desc' }, 'name']).select('id', 'key', 'name', 'description', 'permissions', 'is_system');
  return rows.map(toRole);
}

export async function findRole(trx: Knex.Transaction, id: string): Promise<RoleRow | undefined> {
  const row = await trx('roles').where({ id }).first('id', 'key', 'name', 'description', 'permissions', 'is_system');
  return row ? toRole(row) : undefined;
}

export async function insertRole(trx: Knex.Transaction, row: { practice_id: string; key: string; name: string; description: string; permissions: readonly Permission[]; is_system: boolean }): Promise<string> {
  const [r] = await trx('roles').insert({ ...row, permissions: [...row.permissions] }).onConflict().ignore().returning<{ id: string }[]>('id');
  return r?.id ?? '';
}

export async function updateRole(trx: Knex.Transaction, id: string, change: { name: string; description: string; permissions: readonly Permission[] }): Promise<number> {
  return trx('roles').where({ id, is_system: false }).update({ ...change, permissions: [...change.permissions], updated_at: trx.fn.now() });
}

export async function roleNameTaken(trx: Knex.Transaction, name: string, exceptId?: string): Promise<boolean> {
  const q = trx('roles').whereRaw('lower(name) = lower(?)', [name]);
  if (exceptId) q.whereNot({ id: exceptId });
  return Boolean(await q.first('id'));
}

/** Everything the user's roles grant (deduplicated). */
export async function permissionsOfUser(trx: Knex.Transaction, userId: string): Promise<Set<Permission>> {
  const rows = await trx('user_roles as ur').join('roles as r', 'r.id', 'ur.role_id').where('ur.user_id', userId).select<{ key: string; is_system: boolean; permissions: string[] }[]>('r.key', 'r.is_system', 'r.permissions');
  return new Set(rows.flatMap(granted));
}

export async function roleIdsOfUsers(trx: Knex.Transaction, userIds: readonly string[]): Promise<Map<string, string[]>> {
  const rows = await trx('user_roles').whereIn('user_id', userIds).select<{ user_id: string; role_id: string }[]>('user_id', 'role_id');
  const map = new Map<string, string[]>();
  for (const r of rows) map.set(r.user_id, [...(map.get(r.user_id) ?? []), r.role_id]);
  return map;
}

export async function locationIdsOfUsers(trx: Knex.Transaction, userIds: readonly string[]): Promise<Map<string, string[]>> {
  const rows = await trx('user_locations').whereIn('user_id', userIds).select<{ user_id: string; location_id: string }[]>('user_id', 'location_id');
  const map = new Map<string, string[]>();
  for (const r of rows) map.set(r.user_id, [...(map.get(r.user_id) ?? []), r.location_id]);
  return map;
}

export async function setUserRoles(trx: Knex.Transaction, practiceId: string, userId: string, roleIds: readonly string[]): Promise<void> {
  await trx('user_roles').where({ user_id: userId }).delete();
  if (roleIds.length) await trx('user_roles').insert(roleIds.map((role_id) => ({ practice_id: practiceId, user_id: userId, role_id })));
}

export async function setUserLocations(trx: Knex.Transaction, practiceId: string, userId: string, locationIds: readonly string[]): Promise<void> {
  await trx('user_locations').where({ user_id: userId }).delete();
  if (locationIds.length) await trx('user_locations').insert(locationIds.map((location_id) => ({ practice_id: practiceId, user_id: userId, location_id })));
}

export async function countHolders(trx: Knex.Transaction, roleId: string): Promise<number> {
  const row = await trx('user_roles as ur').join('users as u', 'u.id', 'ur.user_id').where('ur.role_id', roleId).where('u.status', 'active').count<{ n: string }[]>({ n: '*' });
  return Number(row[0]?.n ?? 0);
}
