import { z } from 'zod';
import { DATE_FORMATS } from '../presenters/format.js';
import { ALL_PERMISSIONS } from '../permissions.js';

/**
 * What an audit event may contain: ids, enums, counts — never PHI. Every field is a closed type: a
 * uuid, a number, an enum member, or a token from a fixed catalogue; free text has nowhere to go.
 * (A patient's name fails every one of these schemas; test/unit/audit-event.test.ts proves it.)
 */
export const AUDIT_ACTIONS = [
  'view', 'list', 'search', 'create', 'update', 'delete', 'export', 'print', 'share', 'download', 'upload',
  'login', 'logout', 'login_failed', 'lockout', 'mfa_enroll', 'mfa_success', 'mfa_failure', 'mfa_reset',
  'password_change', 'password_reset', 'session_revoke', 'permission_denied', 'break_glass', 'role_change',
  'user_invite', 'user_deactivate', 'user_reactivate', 'link_create', 'link_open', 'link_revoke', 'link_locked',
  'dob_failed', 'sign', 'amend', 'accept', 'decline', 'key_create', 'key_rotate', 'key_rewrap', 'key_shred',
  'audit_verify', 'audit_checkpoint', 'audit_export', 'settings_change', 'operator_grant', 'operator_revoke', 'step_up',
  'deletion_request', 'deletion_cancel', 'purge', 'legal_hold', 'legal_hold_release', 'practice_terminate',
  'access_review_create', 'access_review_decide', 'access_review_signoff', 'alert',
  'submit', 'review', 'message_queue', 'message_suppressed', 'sms_opt_out', 'sms_opt_in', 'form_template_change',
  'alert_acknowledge', 'invitation_revoke', 'mfa_destroy', 'user_unlock',
  'backup_create', 'backup_verify', 'backup_restore', 'restore_drill',
  'request_extend', 'request_close',
] as const;

export const RESOURCE_TYPES = [
  'practice', 'location', 'user', 'role', 'session', 'patient', 'clinical_note', 'treatment_plan', 'document',
  'file', 'portal_link', 'form_submission', 'referral', 'audit_log', 'audit_checkpoint', 'data_key', 'setting',
  'export', 'access_review', 'operator_grant', 'break_glass_grant', 'treatment_plan_item', 'message', 'form_template',
  'security_alert', 'operator', 'backup', 'patient_request', 'disclosure', 'vendor', 'incident', 'appointment',
] as const;

/** Practice settings whose changes are audited with old and new values (numbers, booleans, ids). */
export const SETTING_NAMES = [
  'session_idle_minutes', 'session_absolute_hours', 'mfa_required_for_all', 'portal_link_days', 'export_volume_threshold',
  'security_contact_user_id', 'audit_retention_years', 'patient_purge_grace_days', 'inactive_account_days',
  'date_format', 'timezone', 'phone', 'logo', 'access_report_names', 'ba_notice_hours',
] as const;

/** An IANA time zone name ("America/Chicago"): a system token, never free text. */
const TIME_ZONE = /^[A-Za-z][A-Za-z0-9_+-]{0,30}(\/[A-Za-z0-9_+-]{1,30}){0,2}$/;

export const REASON_CODES = ['emergency', 'continuity_of_care', 'patient_request', 'support_case', 'legal', 'other'] as const;

const uuid = z.uuid();
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The catalogue of detail keys and their types. Add a key here (with a type) before using it. */
export const DETAIL_FIELDS = {
  count,
  version: count,
  seq: count,
  from_seq: count,
  to_seq: count,
  status_code: z.number().int().min(100).max(599),
  purpose: z.enum(['fields', 'blind-index', 'files']),
  format: z.enum(['csv', 'pdf', 'json', 'html']),
  target_type: z.enum(RESOURCE_TYPES),
  target_id: uuid,
  location_id: uuid,
  covering_location_id: uuid,
  role_id: uuid,
  file_id: uuid,
  reference_id: uuid,
  mfa_required: z.boolean(),
  step_up: z.boolean(),
  permission: z.enum(ALL_PERMISSIONS as [string, ...string[]]),
  minutes: count,
  channel: z.enum(['email', 'sms']),
  suppressed_because: z.enum(['opted_out', 'no_consent', 'no_address', 'confidential_communication']),
  setting: z.enum(SETTING_NAMES),
  /**
   * A setting's value before and after: a number, a yes/no, an account id, a date format or a
   * time zone — never free text (a changed phone number or logo is recorded without its values).
   */
  from_value: z.union([count, z.boolean(), uuid, z.enum(DATE_FORMATS), z.string().regex(TIME_ZONE)]).nullable(),
  to_value: z.union([count, z.boolean(), uuid, z.enum(DATE_FORMATS), z.string().regex(TIME_ZONE)]).nullable(),
  /** A scheduled job's name (system-defined tokens only). */
  job: z.string().regex(/^[a-z][a-z0-9-]{1,48}$/),
  /** Sizes and durations (backups, restores, drills). */
  bytes: count,
  files: count,
  seconds: count,
} as const;

const details = z
  .strictObject(Object.fromEntries(Object.entries(DETAIL_FIELDS).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof DETAIL_FIELDS]: z.ZodOptional<(typeof DETAIL_FIELDS)[K]> })
  .default({});

/** Actor ids: a uuid for people and links; a short lowercase token for system jobs and operator tools. */
const actor = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.enum(['user', 'patient_link']), id: uuid }),
  z.strictObject({ kind: z.enum(['system', 'operator']), id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/) }),
  z.strictObject({ kind: z.literal('anonymous'), id: z.undefined().optional() }),
]);

export const auditEventSchema = z.strictObject({
  practiceId: uuid,
  actor,
  action: z.enum(AUDIT_ACTIONS),
  resource: z.strictObject({ type: z.enum(RESOURCE_TYPES), id: z.union([uuid, z.string().regex(/^\d{1,19}$/)]).optional() }).optional(),
  patientId: uuid.optional(),
  outcome: z.enum(['allowed', 'denied', 'failed']),
  ip: z.union([z.ipv4(), z.ipv6()]).optional(),
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{8,64}$/).optional(),
  reason: z.enum(REASON_CODES).optional(),
  details,
});

export type AuditEventInput = z.input<typeof auditEventSchema>;
export type AuditEvent = z.output<typeof auditEventSchema>;
