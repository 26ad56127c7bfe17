import { isOfficeDocument } from '../documents/kinds.js';
import { can, coversLocation, type StaffActor } from './actor.js';

/** A patient as the policy sees it: ids, the location, and any running break-glass grant of the actor. */
export interface PatientRecord {
  practiceId: string;
  id: string;
  locationId: string;
  /** When the actor's break-glass grant on this patient ends (absent: none running). */
  breakGlassUntil?: Date;
}

const reachable = (actor: StaffActor, p: PatientRecord, now: Date): boolean =>
  p.practiceId === actor.practiceId && (coversLocation(actor, p.locationId) || (p.breakGlassUntil !== undefined && p.breakGlassUntil > now));

/**
 * Who may find, open and change patients. Location scoping: a user sees the patients of the
 * locations they are assigned to (owners: all). Break-glass lifts the location scope for one
 * patient for a limited time; it never adds a permission the role lacks.
 */
export const patientPolicy = {
  search: (actor: StaffActor) => can(actor, 'patients.read'),
  create: (actor: StaffActor, p: { locationId: string }) => can(actor, 'patients.write') && coversLocation(actor, p.locationId),
  show: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'patients.read') && reachable(actor, p, now),
  update: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'patients.write') && reachable(actor, p, now),
  /** Moving a patient to another location: the editor must cover the new one too. */
  relocate: (actor: StaffActor, p: PatientRecord, locationId: string) => can(actor, 'patients.write') && p.practiceId === actor.practiceId && coversLocation(actor, locationId),
  /** Minimum necessary: insurance details are for billing and for whoever registers patients. */
  seeInsurance: (actor: StaffActor) => can(actor, 'billing.read') || can(actor, 'patients.write'),
  accessHistory: (actor: StaffActor, p: PatientRecord) => can(actor, 'audit.read') && p.practiceId === actor.practiceId,
  /** Break-glass is for a patient outside one's normal access only. */
  breakGlass: (actor: StaffActor, p: PatientRecord) => can(actor, 'breakglass.use') && can(actor, 'patients.read') && p.practiceId === actor.practiceId && !coversLocation(actor, p.locationId),
  reviewBreakGlass: (actor: StaffActor) => can(actor, 'compliance.manage'),
  /** Patients' rights requests and disclosures: the practice's duty, not a location's. */
  manageRights: (actor: StaffActor, p: PatientRecord) => can(actor, 'rights.manage') && p.practiceId === actor.practiceId,
  /** Documents and images of a patient one can open. */
  uploadDocument: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'documents.upload') && reachable(actor, p, now),
  /** Some documents of this patient: all with documents.download, the office's paperwork with documents.office. */
  viewDocuments: (actor: StaffActor, p: PatientRecord, now: Date) => (can(actor, 'documents.download') || can(actor, 'documents.office')) && reachable(actor, p, now),
  /** This document, by its kind (src/documents/kinds.ts). */
  viewDocument: (actor: StaffActor, p: PatientRecord, now: Date, kind: string) =>
    (can(actor, 'documents.download') || (can(actor, 'documents.office') && isOfficeDocument(kind))) && reachable(actor, p, now),
  /** Clinical notes: clinical roles only (front desk and billing never). */
  readNotes: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'clinical.read') && reachable(actor, p, now),
  writeNotes: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'clinical.write') && reachable(actor, p, now),
  /** Treatment plans: read by clinical, coordination and billing roles; built by providers and coordinators. */
  readPlans: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'plans.read') && reachable(actor, p, now),
  writePlans: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'plans.write') && reachable(actor, p, now),
  /** Patient links (plans, forms, uploads) go out from those who may send them. */
  sendLink: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'portal.send') && reachable(actor, p, now),
  /** Intake and consent submissions are reviewed by those who hold forms.review. */
  reviewForms: (actor: StaffActor, p: PatientRecord, now: Date) => can(actor, 'forms.review') && reachable(actor, p, now),
  /** A draft is its author's until signed; after that nobody edits it (amendments only). */
  editDraft: (actor: StaffActor, p: PatientRecord, now: Date, note: { authorId: string; status: string }) =>
    can(actor, 'clinical.write') && reachable(actor, p, now) && note.authorId === actor.id && note.status === 'draft',
};
