import type { Knex } from 'knex';
import { z } from 'zod';
import { DETAIL_FIELDS } from '../audit/event.schema.js';
import { insertAlert } from '../queries/alerts.queries.js';

/**
 * Security alerts: one table, one call. Practices' alerts — sign-in and link lockouts, break-glass,
 * audit verification failures, unusual export volume, overdue reviews, disabled accounts — and the
 * installation's (INSTALLATION_ID: any practice's audit verification failure, failing jobs, an outbox
 * failing for an hour, a file store that cannot write, operator lockouts) all raise through
 * raiseAlert(). Details use the audit log's closed catalogue (ids, enums, counts): never PHI.
 * Who hears of it: the alerts page and a banner on every page for holders of `alerts.read`, and an
 * email to the practice's security contact within a minute (the outbox job, notifyAlerts()).
 * Operators see the installation's on their console, with a banner.
 */
export const ALERT_KINDS = [
  'audit_verification_failed', 'signin_lockout', 'link_lockout', 'break_glass', 'export_volume', 'review_overdue', 'accounts_disabled',
  'job_failed', 'outbox_failing', 'storage_failed', 'restore_drill_failed', 'rights_request_overdue', 'baa_missing', 'incident_deadline',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** The kinds each alerts page can show (its filter lists only these). */
export const PRACTICE_ALERT_KINDS: readonly AlertKind[] = ['signin_lockout', 'link_lockout', 'break_glass', 'export_volume', 'review_overdue', 'accounts_disabled', 'audit_verification_failed', 'rights_request_overdue', 'baa_missing', 'incident_deadline'];
export const INSTALLATION_ALERT_KINDS: readonly AlertKind[] = ['audit_verification_failed', 'job_failed', 'outbox_failing', 'storage_failed', 'signin_lockout', 'review_overdue', 'restore_drill_failed', 'baa_missing'];

/** What each kind means, in the words of the alerts page and the email (no detail of the event). */
export const ALERT_LABELS: Record<AlertKind, string> = {
  audit_verification_failed: 'The audit log failed its integrity check',
  signin_lockout: 'An account was locked after repeated failed sign-ins',
  link_lockout: 'A patient link was locked after repeated wrong dates of birth',
  break_glass: 'Someone used emergency access to a patient record',
  export_volume: 'One person exported, downloaded or printed an unusual amount in an hour',
  review_overdue: 'An access review is overdue',
  accounts_disabled: 'Unused accounts were disabled automatically',
  job_failed: 'A scheduled job failed',
  outbox_failing: 'Email or text messages have been failing for over an hour',
  storage_failed: 'The file store could not save a document',
  restore_drill_failed: 'The weekly restore drill failed: the latest backup could not be restored and checked',
  rights_request_overdue: 'A patient’s request (access, amendment, accounting, restriction) is past its legal due date',
  baa_missing: 'A service that holds or receives PHI has no business associate agreement in force',
  incident_deadline: 'A breach notice is due within a week, or overdue',
};

export const SEVERITIES = ['info', 'warning', 'critical'] as const;

const alertSchema = z.strictObject({
  practiceId: z.uuid(),
  kind: z.enum(ALERT_KINDS),
  severity: z.enum(SEVERITIES),
  details: z
    .strictObject(Object.fromEntries(Object.entries(DETAIL_FIELDS).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof DETAIL_FIELDS]: z.ZodOptional<(typeof DETAIL_FIELDS)[K]> })
    .default({}),
});
export type AlertInput = z.input<typeof alertSchema>;

/** SECURITY: the one way to raise an alert: recorded in the caller's transaction (so it exists exactly when what caused it commits). Returns its id. */
export async function raiseAlert(trx: Knex.Transaction, input: AlertInput): Promise<string> {
  const a = alertSchema.parse(input);
  return insertAlert(trx, { practice_id: a.practiceId, kind: a.kind, severity: a.severity, details: a.details });
}
