import type { Knex } from 'knex';
import { ALERT_KINDS, ALERT_LABELS, raiseAlert, type AlertInput, type AlertKind } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { enqueue } from '../../messaging/outbox.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { acknowledgeAlert, alertSecrets, findAlert, listAlerts, markAlertsNotified, openAlertExists, openAlertSummary, unnotifiedAlerts, type AlertFilter, type AlertRow } from '../../queries/alerts.queries.js';
import { failingMessages } from '../../queries/outbox.queries.js';
import { activeOwnerEmails } from '../../queries/access-reviews.queries.js';
import { operatorNames, practiceDirectory } from '../../queries/operators.queries.js';
import { allPracticeIds, findCurrentPractice, findPracticeSettings } from '../../queries/practices.queries.js';
import { findUserById, listUsers } from '../../queries/users.queries.js';
import { staffEvent as event, staffWork } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';
import type { OperatorActor } from '../operators/operators.service.js';

/**
 * Security alerts as people meet them: the practice's alerts page (open / acknowledged, filter by
 * kind and severity, acknowledge with a note — audited), the banner every staff page shows holders
 * of alerts.read while a warning or critical alert is open, the count on the home page, and the
 * email to the practice's security contact (or, when none is named, its owners) that the outbox
 * job sends within a minute. The installation's alerts are the operators' (same table, the
 * installation tenant).
 */

export interface AlertView {
  id: string;
  kind: string;
  label: string;
  severity: string;
  createdAt: Date;
  /** What the alert is about: accounts and practices by name, other records by kind, counts (no patient data). */
  facts: string;
  /** Where to look into it, when there is a page for that. */
  next?: { href: string; label: string };
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
  note: string | null;
  notifiedAt: Date | null;
}

export const ALERT_PAGE_SIZE = 100;

const TARGET_WORDS: Record<string, string> = { user: 'account', operator: 'operator', practice: 'practice', portal_link: 'a patient link', break_glass_grant: 'an emergency access', access_review: 'an access review' };

/** The alert's details in words: named accounts, operators and practices; other records by kind only. */
function facts(details: Record<string, unknown>, names: Map<string, string>): string {
  const parts: string[] = [];
  const type = typeof details.target_type === 'string' ? details.target_type : undefined;
  const id = typeof details.target_id === 'string' ? details.target_id : undefined;
  if (type) parts.push(type === 'user' || type === 'operator' || type === 'practice' ? `${TARGET_WORDS[type]} ${(id && names.get(id)) ?? (id ? id.slice(0, 8) : '')}`.trim() : (TARGET_WORDS[type] ?? type.replace(/_/g, ' ')));
  if (typeof details.job === 'string') parts.push(`job ${details.job}`);
  if (typeof details.count === 'number') parts.push(`count ${details.count}`);
  if (typeof details.seq === 'number') parts.push(`at event ${details.seq}`);
  return parts.join(' · ');
}

/** The page where a practice's alert is looked into (the owner's and manager's own pages). */
function nextStep(kind: string, details: Record<string, unknown>, slug: string | undefined): AlertView['next'] {
  if (!slug) return undefined;
  const account = details.target_type === 'user' && typeof details.target_id === 'string' ? details.target_id : undefined;
  const pages: Record<string, AlertView['next']> = {
    signin_lockout: account ? { href: `/p/${slug}/users/${account}`, label: 'the account' } : { href: `/p/${slug}/users`, label: 'Users' },
    accounts_disabled: { href: `/p/${slug}/users`, label: 'Users' },
    break_glass: { href: `/p/${slug}/break-glass`, label: 'Emergency access review' },
    review_overdue: { href: `/p/${slug}/compliance`, label: 'Compliance' },
    export_volume: { href: `/p/${slug}/audit`, label: 'Audit log' },
    audit_verification_failed: { href: `/p/${slug}/audit`, label: 'Audit log' },
  };
  return pages[kind];
}

async function present(pc: PracticeCrypto, rows: AlertRow[], names: Map<string, string>, slug?: string): Promise<AlertView[]> {
  const out: AlertView[] = [];
  for (const r of rows) {
    const next = nextStep(r.kind, r.details, slug);
    out.push({
      id: r.id,
      kind: r.kind,
      label: ALERT_LABELS[r.kind as AlertKind] ?? r.kind,
      severity: r.severity,
      createdAt: r.created_at,
      facts: facts(r.details, names),
      ...(next ? { next } : {}),
      acknowledgedAt: r.acknowledged_at,
      acknowledgedBy: r.acknowledged_by ? (names.get(r.acknowledged_by) ?? 'someone no longer listed') : null,
      note: r.acknowledged_note ? ((await alertSecrets.open(pc, r)).acknowledged_note ?? null) : null,
      notifiedAt: r.notified_at,
    });
  }
  return out;
}

/** The practice's alerts page (alerts.read). The look itself is audited. */
export async function practiceAlerts(d: { db: Db; keyring: Keyring }, actor: StaffActor, filter: AlertFilter, meta: Meta): Promise<AlertView[]> {
  ensure(authorize(actor, 'practice.readAlerts'), { permission: 'alerts.read' });
  return staffWork(d.db, actor, async (trx) => {
    const rows = await listAlerts(trx, filter, ALERT_PAGE_SIZE);
    await audit.record(trx, event(actor, meta, { action: 'list', resource: { type: 'security_alert' }, outcome: 'allowed', details: { count: rows.length } }));
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    return present(new PracticeCrypto(d.keyring, trx, actor.practiceId), rows, names, actor.slug);
  });
}

async function acknowledge(trx: Knex.Transaction, keyring: Keyring, tenantId: string, alertId: string, by: string, note: string, now: Date): Promise<'done' | 'already' | 'missing'> {
  const alert = await findAlert(trx, alertId);
  if (!alert) return 'missing';
  if (alert.acknowledged_at) return 'already';
  const sealed = note ? await alertSecrets.seal(new PracticeCrypto(keyring, trx, tenantId), alertId, { acknowledged_note: note }) : {};
  await acknowledgeAlert(trx, alertId, { acknowledged_by: by, acknowledged_at: now, acknowledged_note: (sealed.acknowledged_note as Buffer | undefined) ?? null });
  return 'done';
}

/** Acknowledges one alert with a note (what was found, what was done). Audited. */
export async function acknowledgePracticeAlert(d: { db: Db; keyring: Keyring }, actor: StaffActor, alertId: string, note: string, meta: Meta): Promise<FormResult<null>> {
  return staffWork(d.db, actor, async (trx) => {
    ensure(authorize(actor, 'practice.acknowledgeAlert', { practiceId: actor.practiceId }), { permission: 'alerts.read', resource: { type: 'security_alert', id: alertId } });
    const outcome = await acknowledge(trx, d.keyring, actor.practiceId, alertId, actor.id, note, meta.now);
    if (outcome === 'missing') throw new AccessDenied({ resource: { type: 'security_alert', id: alertId } });
    if (outcome === 'already') return { ok: false, error: 'Someone acknowledged this alert already.' };
    await audit.record(trx, event(actor, meta, { action: 'alert_acknowledge', resource: { type: 'security_alert', id: alertId }, outcome: 'allowed' }));
    return { ok: true, value: null };
  });
}

export interface BannerState {
  count: number;
  critical: number;
}

/** The banner's facts for a holder of alerts.read, in the caller's tenant transaction (the session check's). */
export async function alertBanner(trx: Knex.Transaction): Promise<BannerState | undefined> {
  const s = await openAlertSummary(trx);
  return s.count > 0 ? s : undefined;
}

/** The same for operators: the installation's open warning or critical alerts. */
export function installationBanner(db: Db, op: Pick<OperatorActor, 'id'>): Promise<BannerState | undefined> {
  return db.withPractice(INSTALLATION_ID, { kind: 'operator', id: op.id }, alertBanner);
}

/** The installation's alerts (operators' console). */
export async function installationAlerts(d: { db: Db; keyring: Keyring }, op: OperatorActor, filter: AlertFilter, meta: Meta): Promise<AlertView[]> {
  return d.db.withPractice(INSTALLATION_ID, { kind: 'operator', id: op.id }, async (trx) => {
    const rows = await listAlerts(trx, filter, ALERT_PAGE_SIZE);
    await audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'operator', id: op.id }, ip: meta.ip, requestId: meta.requestId, action: 'list', resource: { type: 'security_alert' }, outcome: 'allowed', details: { count: rows.length } });
    const ids = [...new Set(rows.flatMap((r) => [r.acknowledged_by, typeof r.details.target_id === 'string' ? r.details.target_id : null]).filter((x): x is string => Boolean(x)))];
    const names = new Map((await operatorNames(trx, ids)).map((o) => [o.id, o.display_name]));
    for (const p of await practiceDirectory(trx)) names.set(p.id, p.name);
    return present(new PracticeCrypto(d.keyring, trx, INSTALLATION_ID), rows, names);
  });
}

export async function acknowledgeInstallationAlert(d: { db: Db; keyring: Keyring }, op: OperatorActor, alertId: string, note: string, meta: Meta): Promise<FormResult<null>> {
  return d.db.withPractice(INSTALLATION_ID, { kind: 'operator', id: op.id }, async (trx) => {
    const outcome = await acknowledge(trx, d.keyring, INSTALLATION_ID, alertId, op.id, note, meta.now);
    if (outcome === 'missing') throw new AccessDenied({ resource: { type: 'security_alert', id: alertId } });
    if (outcome === 'already') return { ok: false, error: 'Another operator acknowledged this alert already.' };
    await audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'operator', id: op.id }, ip: meta.ip, requestId: meta.requestId, action: 'alert_acknowledge', resource: { type: 'security_alert', id: alertId }, outcome: 'allowed' });
    return { ok: true, value: null };
  });
}

/**
 * The outbox job's first step, inside the practice's transaction: every alert nobody has been told
 * about yet gets one email to the practice's security contact (an active account), or to every
 * active owner when no contact is named — template `security_alert`: the practice name, the kind
 * and a link to the alerts page, nothing else — due at once, so the same run sends it. An alert
 * acknowledged before the job came round is not emailed. Then the alerts are marked notified.
 * Returns how many emails were queued.
 */
export async function notifyAlerts(trx: Knex.Transaction, keyring: Keyring, practiceId: string, publicUrl: URL, now: Date): Promise<number> {
  const pending = await unnotifiedAlerts(trx, 50);
  if (pending.length === 0) return 0;
  const practice = await findCurrentPractice(trx);
  const settings = await findPracticeSettings(trx);
  const contact = settings?.security_contact_user_id ? await findUserById(trx, settings.security_contact_user_id) : undefined;
  const recipients = contact && contact.status === 'active' ? [contact.email] : await activeOwnerEmails(trx);
  let queued = 0;
  if (practice) {
    const link = new URL(`/p/${practice.slug}/alerts`, publicUrl).toString();
    for (const a of pending) {
      const alertKind = ALERT_KINDS.includes(a.kind as AlertKind) ? (a.kind as AlertKind) : undefined;
      // CASE: someone acknowledged it before the job came round: they know; no email.
      if (!alertKind || a.acknowledged_at) continue;
      for (const to of recipients) {
        await enqueue(trx, keyring, { practiceId, template: 'security_alert', to, params: { practiceName: practice.name, alertKind, link }, at: now });
        queued++;
      }
    }
  }
  await markAlertsNotified(trx, pending.map((a) => a.id), now);
  return queued;
}

/**
 * SECURITY: raises an installation alert (the operators' console) unless one of the same kind
 * about the same thing is still open, so a failing job or a broken store alerts once, not every
 * minute. Its own transaction in the installation tenant. Returns whether one was raised.
 */
export async function raiseInstallationAlert(db: Db, input: { kind: AlertKind; severity: 'info' | 'warning' | 'critical'; details?: AlertInput['details'] }): Promise<boolean> {
  return db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'alerts' }, async (trx) => {
    const d = input.details ?? {};
    if (await openAlertExists(trx, input.kind, { ...(d.target_id ? { targetId: d.target_id } : {}), ...(d.job ? { job: d.job } : {}) })) return false;
    await raiseAlert(trx, { practiceId: INSTALLATION_ID, kind: input.kind, severity: input.severity, details: d });
    return true;
  });
}

/** The outbox job's first step for every practice: email the alerts nobody was told about yet. */
export async function notifyAllAlerts(d: { db: Db; keyring: Keyring; publicUrl: URL }, now: Date): Promise<number> {
  let queued = 0;
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    queued += await d.db.withPractice(practiceId, { kind: 'system', id: 'outbox' }, (trx) => notifyAlerts(trx, d.keyring, practiceId, d.publicUrl, now));
  }
  return queued;
}

/** The outbox job's last step: a practice whose messages have been failing for over an hour raises an installation alert (once while it is open). */
export async function watchOutboxHealth(db: Db, now: Date): Promise<number> {
  let raised = 0;
  const since = new Date(now.getTime() - 3_600_000);
  for (const practiceId of await allPracticeIds(db.knex)) {
    const failing = await db.withPractice(practiceId, { kind: 'system', id: 'outbox' }, (trx) => failingMessages(trx, since));
    if (failing > 0 && (await raiseInstallationAlert(db, { kind: 'outbox_failing', severity: 'warning', details: { target_type: 'practice', target_id: practiceId, count: failing } }))) raised++;
  }
  return raised;
}
