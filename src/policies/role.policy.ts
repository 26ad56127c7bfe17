import type { Permission } from '../permissions.js';
import { can, type StaffActor } from './actor.js';

export interface RoleRecord {
  practiceId: string;
  id: string;
  isSystem: boolean;
  permissions: readonly Permission[];
}

/** SECURITY: nobody grants (in a role, or by assigning a role) a permission they do not hold. */
export const holdsAll = (actor: StaffActor, permissions: readonly Permission[]): boolean => permissions.every((p) => actor.permissions.has(p));

/** Who may see, edit and assign roles. */
export const rolePolicy = {
  index: (actor: StaffActor) => can(actor, 'roles.manage'),
  create: (actor: StaffActor, proposed: { permissions: readonly Permission[] }) => can(actor, 'roles.manage') && holdsAll(actor, proposed.permissions),
  /** Editing: never the owner role; and the role both before and after stays within what the editor holds. */
  update: (actor: StaffActor, role: RoleRecord, proposed: { permissions: readonly Permission[] }) =>
    can(actor, 'roles.manage') && role.practiceId === actor.practiceId && !role.isSystem && holdsAll(actor, role.permissions) && holdsAll(actor, proposed.permissions),
  /** Assigning or removing a role on a user: users.manage, and the role grants nothing the assigner lacks. */
  assign: (actor: StaffActor, role: RoleRecord) => can(actor, 'users.manage') && role.practiceId === actor.practiceId && holdsAll(actor, role.permissions),
};
