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
  acknowledgeAlert: (actor: StaffActor, a: { practiceId: string }) => can(actor, 'alerts.read') && a.practiceId === actor.practiceId,
};
