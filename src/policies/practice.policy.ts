import { can, type StaffActor } from './actor.js';

/**
 * The practice itself: its security settings (session limits, MFA policy, link validity, export
 * threshold, security contact, audit retention) belong to the owner alone — an office manager with
 * settings.manage edits forms, not the controls that protect everyone's sign-in; and the security
 * alerts, for holders of alerts.read.
 */
export const practicePolicy = {
  securitySettings: (actor: StaffActor) => actor.isOwner && can(actor, 'settings.manage'),
  /** The practice's phone, logo, date format and time zone: whoever manages settings. */
  practiceDetails: (actor: StaffActor) => can(actor, 'settings.manage'),
  readAlerts: (actor: StaffActor) => can(actor, 'alerts.read'),
  /** The practice's form templates: listed for those who edit them and those who send them in links. */
  listForms: (actor: StaffActor) => can(actor, 'settings.manage') || can(actor, 'portal.send'),
  editForms: (actor: StaffActor) => can(actor, 'settings.manage'),
  /** The outbox's delivery status (no recipients, no contents). */
  messageStatus: (actor: StaffActor) => can(actor, 'portal.send'),
  acknowledgeAlert: (actor: StaffActor, a: { practiceId: string }) => can(actor, 'alerts.read') && a.practiceId === actor.practiceId,
  /** The machine-readable export of every patient (or one): holders of practice.export (by default the owner). */
  exportData: (actor: StaffActor) => can(actor, 'practice.export'),
  /** The register of patients' rights requests (every location's). */
  manageRightsRegister: (actor: StaffActor) => can(actor, 'rights.manage'),
  /** The practice's business associates (the BAA registry) and its coverage map. */
  manageVendors: (actor: StaffActor) => can(actor, 'compliance.manage'),
  /** The sub-processor list, generated from the registry: anyone signed in at the practice. */
  readSubprocessors: (_actor: StaffActor) => true,
  /** The schedule: reading it (names on it are audited reads), and booking. */
  readSchedule: (actor: StaffActor) => can(actor, 'schedule.read') || can(actor, 'schedule.manage'),
  manageSchedule: (actor: StaffActor) => can(actor, 'schedule.manage'),
  /** The incident and breach register. */
  manageIncidents: (actor: StaffActor) => can(actor, 'incidents.manage'),
};
