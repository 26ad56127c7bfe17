import type { Knex } from 'knex';
import { audit, type AuditEventInput } from '../../audit/record.js';
import type { SETTING_NAMES } from '../../audit/event.schema.js';
import type { Db } from '../../db/tenant.js';
import { authorize, ensure, type StaffActor } from '../../policies/index.js';
import { findPracticeSettings, updatePracticeSettingsRow, type PracticeSettingsRow } from '../../queries/practices.queries.js';
import { findUserById, listUsers } from '../../queries/users.queries.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';

/**
 * A practice's settings, changed in one place: the owner's security settings (session limits,
 * MFA policy, link validity, export-volume threshold, security contact, audit retention — behind
 * step-up at the route) and the operator's retention settings. Every changed value is audited as
 * its own `settings_change` event with the old and the new value (numbers, yes/no, account ids:
 * never text). The database checks the same ranges (sessions can only be shortened).
 */

/** The settings stored in practice_settings columns of the same name (the logo is its own write). */
type SettingName = Exclude<(typeof SETTING_NAMES)[number], 'logo'>;
/** Free text a practice types (its phone number): a change is recorded, its values are not. */
const UNRECORDED_VALUES: ReadonlySet<SettingName> = new Set(['phone']);
type Value = number | boolean | string | null;

/** Writes the changed settings and one audit event per change; returns how many changed. */
export async function applySettings(trx: Knex.Transaction, before: PracticeSettingsRow, next: Partial<Pick<PracticeSettingsRow, SettingName>>, eventOf: (e: Omit<AuditEventInput, 'practiceId' | 'actor' | 'ip' | 'requestId'>) => AuditEventInput): Promise<number> {
  const changed = (Object.keys(next) as SettingName[]).filter((k) => next[k] !== undefined && next[k] !== before[k]);
  if (changed.length === 0) return 0;
  await updatePracticeSettingsRow(trx, Object.fromEntries(changed.map((k) => [k, next[k]])));
  for (const setting of changed) {
    const values = UNRECORDED_VALUES.has(setting) ? {} : { from_value: before[setting] as Value, to_value: next[setting] as Value };
    await audit.record(trx, eventOf({ action: 'settings_change', resource: { type: 'setting' }, outcome: 'allowed', details: { setting, ...values } }));
  }
  return changed.length;
}

export interface SecuritySettingsInput {
  sessionIdleMinutes: number;
  sessionAbsoluteHours: number;
  mfaRequiredForAll: boolean;
  portalLinkDays: number;
  exportVolumeThreshold: number;
  securityContactUserId: string | null;
  auditRetentionYears: number;
  /** "Who saw my record" names the staff member (false: the role only). */
  accessReportNames: boolean;
  /** A business associate agreement's clock for the associate's notice of an incident (hours); null: the rule's 60 days. */
  baNoticeHours: number | null;
}

export interface SecuritySettingsView {
  settings: SecuritySettingsInput;
  /** Who may be the security contact: active accounts of the practice. */
  contacts: { id: string; name: string; email: string; mfa: boolean }[];
  /** Whether "only administrators" may be chosen for MFA (never in production). */
  mfaMayBeRelaxed: boolean;
}

const view = (s: PracticeSettingsRow): SecuritySettingsInput => ({
  sessionIdleMinutes: s.session_idle_minutes,
  sessionAbsoluteHours: s.session_absolute_hours,
  mfaRequiredForAll: s.mfa_required_for_all,
  portalLinkDays: s.portal_link_days,
  exportVolumeThreshold: s.export_volume_threshold,
  securityContactUserId: s.security_contact_user_id,
  auditRetentionYears: s.audit_retention_years,
  accessReportNames: s.access_report_names,
  baNoticeHours: s.ba_notice_hours,
});

export async function securitySettings(db: Db, actor: StaffActor, options: { production: boolean }): Promise<SecuritySettingsView> {
  ensure(authorize(actor, 'practice.securitySettings'), { permission: 'settings.manage', resource: { type: 'setting' } });
  return work(db, actor, async (trx) => {
    const s = await findPracticeSettings(trx);
    if (!s) throw new Error('practice has no settings row');
    const contacts = (await listUsers(trx)).filter((u) => u.status === 'active').map((u) => ({ id: u.id, name: u.display_name, email: u.email, mfa: Boolean(u.mfa_enrolled_at) }));
    return { settings: view(s), contacts, mfaMayBeRelaxed: !options.production };
  });
}

/**
 * Saves the owner's security settings. SECURITY: production refuses an MFA policy that is not
 * "everyone"; the security contact must be an active account of this practice.
 */
export async function updateSecuritySettings(db: Db, actor: StaffActor, input: SecuritySettingsInput, meta: Meta, options: { production: boolean }): Promise<FormResult<{ changed: number }>> {
  ensure(authorize(actor, 'practice.securitySettings'), { permission: 'settings.manage', resource: { type: 'setting' } });
  if (!input.mfaRequiredForAll && options.production) {
    return { ok: false, error: 'Two-step sign-in is required for every account in production; it cannot be turned off for anyone.' };
  }
  return work(db, actor, async (trx) => {
    const before = await findPracticeSettings(trx);
    if (!before) throw new Error('practice has no settings row');
    if (input.securityContactUserId) {
      const contact = await findUserById(trx, input.securityContactUserId);
      if (!contact || contact.status !== 'active') return { ok: false, error: 'Choose the security contact from the practice’s active accounts.' };
    }
    const changed = await applySettings(
      trx,
      before,
      {
        session_idle_minutes: input.sessionIdleMinutes,
        session_absolute_hours: input.sessionAbsoluteHours,
        mfa_required_for_all: input.mfaRequiredForAll,
        portal_link_days: input.portalLinkDays,
        export_volume_threshold: input.exportVolumeThreshold,
        security_contact_user_id: input.securityContactUserId,
        audit_retention_years: input.auditRetentionYears,
        access_report_names: input.accessReportNames,
        ba_notice_hours: input.baNoticeHours,
      },
      (e) => event(actor, meta, { ...e, details: { ...e.details, step_up: true } }),
    );
    return { ok: true, value: { changed } };
  });
}
