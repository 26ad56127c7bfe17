import type { AUDIT_ACTIONS } from '../audit/event.schema.js';

/**
 * The audit log in plain language: what each action means to a practice (the CSV keeps the
 * machine names), and an event's details as a short sentence.
 */
export const ACTION_LABELS: Record<(typeof AUDIT_ACTIONS)[number], string> = {
  view: 'Opened a record',
  list: 'Saw in a list',
  search: 'Searched',
  create: 'Created',
  update: 'Changed',
  delete: 'Deleted',
  export: 'Exported',
  print: 'Printed',
  share: 'Shared',
  download: 'Downloaded a file',
  upload: 'Uploaded a file',
  login: 'Signed in',
  logout: 'Signed out',
  login_failed: 'Sign-in failed',
  lockout: 'Sign-in locked after failures',
  mfa_enroll: 'Set up two-step sign-in',
  mfa_success: 'Passed two-step sign-in',
  mfa_failure: 'Wrong two-step code',
  mfa_reset: 'Reset someone’s two-step sign-in',
  password_change: 'Changed a password',
  password_reset: 'Reset a password',
  session_revoke: 'Ended sessions',
  permission_denied: 'Refused: no permission',
  break_glass: 'Emergency access',
  role_change: 'Changed roles or access',
  user_invite: 'Invited a user',
  user_deactivate: 'Deactivated a user',
  user_reactivate: 'Reactivated a user',
  link_create: 'Made a patient link',
  link_open: 'Patient opened their link',
  link_revoke: 'Revoked a patient link',
  link_locked: 'Patient link locked',
  dob_failed: 'Wrong date of birth on a link',
  sign: 'Signed',
  amend: 'Amended',
  accept: 'Accepted (signed)',
  decline: 'Declined',
  key_create: 'Created an encryption key',
  key_rotate: 'Rotated an encryption key',
  key_rewrap: 'Re-wrapped encryption keys',
  key_shred: 'Destroyed encryption keys',
  audit_verify: 'Verified the audit chain',
  audit_checkpoint: 'Signed an audit checkpoint',
  audit_export: 'Exported the audit log',
  settings_change: 'Changed a setting',
  operator_grant: 'Granted operator access',
  operator_revoke: 'Revoked operator access',
  step_up: 'Confirmed identity (step-up)',
  deletion_request: 'Asked to delete a patient',
  deletion_cancel: 'Cancelled a deletion',
  purge: 'Purged for good',
  legal_hold: 'Placed a legal hold',
  legal_hold_release: 'Released a legal hold',
  practice_terminate: 'Ended the practice’s service',
  access_review_create: 'Started an access review',
  access_review_decide: 'Decided in an access review',
  access_review_signoff: 'Signed off an access review',
  alert: 'Security alert raised',
  submit: 'Patient submitted a form',
  review: 'Reviewed',
  message_queue: 'Queued a message',
  message_suppressed: 'Message not sent',
  sms_opt_out: 'Patient stopped texts',
  sms_opt_in: 'Patient restarted texts',
  form_template_change: 'Changed a form',
  alert_acknowledge: 'Acknowledged an alert',
  invitation_revoke: 'Revoked an invitation',
  mfa_destroy: 'Removed a two-step secret',
  user_unlock: 'Unlocked a sign-in',
  backup_create: 'Took a backup',
  backup_verify: 'Verified a backup',
  backup_restore: 'Restored a backup',
  restore_drill: 'Ran a restore drill',
  request_extend: 'Extended a patient’s request',
  request_close: 'Answered a patient’s request',
};

const SETTING_LABELS: Record<string, string> = {
  session_idle_minutes: 'sign-out after inactivity (minutes)',
  session_absolute_hours: 'longest session (hours)',
  mfa_required_for_all: 'two-step sign-in for everyone',
  portal_link_days: 'patient link validity (days)',
  export_volume_threshold: 'export alert threshold (per hour)',
  security_contact_user_id: 'security contact',
  audit_retention_years: 'audit retention (years)',
  patient_purge_grace_days: 'deletion grace period (days)',
  inactive_account_days: 'inactive account limit (days)',
  date_format: 'date format',
  timezone: 'time zone',
  phone: 'practice phone number',
  logo: 'logo',
  access_report_names: 'staff names in “Who saw my record”',
  ba_notice_hours: 'business associate notice clock (hours)',
};

const show = (v: unknown, names: Map<string, string>): string => (v === true ? 'yes' : v === false ? 'no' : v === null || v === undefined ? 'none' : typeof v === 'string' && names.has(v) ? names.get(v)! : String(v));

/** An event's details as a short sentence ("security contact: none → Dana Owner"; "3 results"). */
export function describeDetails(details: Record<string, unknown> | null | undefined, userNames: Map<string, string>): string {
  if (!details) return '';
  const parts: string[] = [];
  if (typeof details.setting === 'string') {
    const label = SETTING_LABELS[details.setting] ?? details.setting.replace(/_/g, ' ');
    parts.push('from_value' in details || 'to_value' in details ? `${label}: ${show(details.from_value, userNames)} → ${show(details.to_value, userNames)}` : `${label} changed`);
  }
  for (const [key, value] of Object.entries(details)) {
    if (key === 'setting' || key === 'from_value' || key === 'to_value') continue;
    if (key === 'count') parts.push(`${String(value)} ${Number(value) === 1 ? 'item' : 'items'}`);
    else if (key === 'step_up' && value === true) parts.push('after step-up');
    else if (key === 'minutes') parts.push(`${String(value)} minutes`);
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') parts.push(`${key.replace(/_/g, ' ')}: ${show(value, userNames)}`);
  }
  return parts.join(' · ');
}
