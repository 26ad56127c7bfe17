import { can, type StaffActor } from './actor.js';

/**
 * Compliance work: deletion requests and legal holds (a patient's or the whole practice's), and
 * the quarterly access reviews, operators' support access. Only holders of compliance.manage, in their own practice; location
 * scope does not apply (a retention decision is the practice's, not a location's).
 */
export const compliancePolicy = {
  manageRetention: (actor: StaffActor, p: { practiceId: string }) => can(actor, 'compliance.manage') && p.practiceId === actor.practiceId,
  holdPractice: (actor: StaffActor) => can(actor, 'compliance.manage'),
  reviewAccess: (actor: StaffActor) => can(actor, 'compliance.manage'),
  /** Time-limited support access for a platform operator (seeing, granting, revoking). */
  grantOperatorAccess: (actor: StaffActor) => can(actor, 'compliance.manage'),
};
