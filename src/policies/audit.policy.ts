import { can, type StaffActor } from './actor.js';

/** Who may read the audit log. Exports additionally need a recent step-up (route guard). */
export const auditPolicy = {
  search: (actor: StaffActor) => can(actor, 'audit.read'),
  export: (actor: StaffActor) => can(actor, 'audit.read'),
  patientAccess: (actor: StaffActor) => can(actor, 'audit.read'),
};
