import type { Knex } from 'knex';
import { listLocations } from '../../queries/practices.queries.js';
import { listRoles, locationIdsOfUsers, roleIdsOfUsers, type RoleRow } from '../../queries/roles.queries.js';

/** What each account may do and where: its roles and the names of its roles and locations (owners: all). */
export interface AccountAccess {
  roles: RoleRow[];
  roleNames: string[];
  locationNames: string[];
}

/**
 * The access of several accounts at once (four queries whatever their number): the users page and
 * the access review show the same thing. Runs inside withPractice.
 */
export async function accessOfAccounts(trx: Knex.Transaction, users: readonly { id: string; is_owner: boolean }[]): Promise<Map<string, AccountAccess>> {
  const ids = users.map((u) => u.id);
  // NOTE: one after another: a transaction is one connection.
  const roles = new Map((await listRoles(trx)).map((r) => [r.id, r]));
  const roleIds = await roleIdsOfUsers(trx, ids);
  const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
  const locationIds = await locationIdsOfUsers(trx, ids);
  return new Map(
    users.map((u) => {
      const held = (roleIds.get(u.id) ?? []).map((r) => roles.get(r)).filter((r): r is RoleRow => r !== undefined);
      return [
        u.id,
        {
          roles: held,
          roleNames: u.is_owner ? ['Owner'] : held.map((r) => r.name),
          locationNames: u.is_owner ? ['All locations'] : (locationIds.get(u.id) ?? []).map((l) => locations.get(l) ?? '').filter(Boolean),
        },
      ];
    }),
  );
}
