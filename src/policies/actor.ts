import { ALL_PERMISSIONS, permissionsOfRole, PRIVILEGED_PERMISSIONS, type Permission } from '../permissions.js';

/**
 * The signed-in staff member as authorization sees them, loaded fresh on every request (so a role
 * change takes effect on the holder's next request). Ids and permission names only.
 */
export interface StaffActor {
  kind: 'user';
  id: string;
  practiceId: string;
  slug: string;
  displayName: string;
  permissions: ReadonlySet<Permission>;
  /** 'all' for owners; otherwise the locations the user is assigned to. */
  locations: 'all' | ReadonlySet<string>;
  isOwner: boolean;
  /** When the session last proved password + second factor. */
  authAt: number;
}

export function can(actor: StaffActor, name: Permission): boolean {
  return actor.permissions.has(name);
}

/** SECURITY: owners and anyone holding a privileged permission must use MFA. */
export function mfaRequiredFor(permissions: ReadonlySet<Permission>, isOwner: boolean): boolean {
  return isOwner || PRIVILEGED_PERMISSIONS.some((p) => permissions.has(p));
}

export function coversLocation(actor: StaffActor, locationId: string | null | undefined): boolean {
  if (actor.locations === 'all') return true;
  return typeof locationId === 'string' && actor.locations.has(locationId);
}

/** The actor's permissions and locations from their stored roles and location assignments (pure). */
export function grantsOf(isOwner: boolean, roles: readonly { key: string; is_system: boolean; permissions: readonly string[] }[], locations: readonly string[]): Pick<StaffActor, 'permissions' | 'locations'> {
  // SECURITY: the practice owner (users.is_owner) holds the owner role: everything, everywhere.
  if (isOwner) return { permissions: new Set(ALL_PERMISSIONS), locations: 'all' };
  return { permissions: new Set(roles.flatMap(permissionsOfRole)), locations: new Set(locations) };
}

