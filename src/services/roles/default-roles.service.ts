import type { Knex } from 'knex';
import { DEFAULT_ROLES, OWNER_ROLE_KEY } from '../../permissions.js';
import { insertRole } from '../../queries/roles.queries.js';

/**
 * Gives a practice the default roles it lacks (by key; existing ones, edited or not, are left
 * alone). Idempotent: run when a practice is created and at every start (so practices created
 * before a new default role get it). Runs inside withPractice. The owner role is held through
 * `users.is_owner`, not through user_roles.
 */
export async function ensureDefaultRoles(trx: Knex.Transaction, practiceId: string): Promise<void> {
  for (const role of DEFAULT_ROLES) {
    await insertRole(trx, { practice_id: practiceId, key: role.key, name: role.name, description: role.description, permissions: role.permissions, is_system: role.key === OWNER_ROLE_KEY });
  }
}
