import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import { ACCOUNT_MAX_FAILURES, countIpFailure, ipBlocked } from '../../auth/throttle.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { findLink, findLinkByHashForUpdate, insertLink, LINK_TASKS, linkPracticeId, listLinks, updateLink, type LinkRow, type LinkTask } from '../../queries/links.queries.js';
import { findTemplates } from '../../queries/forms.queries.js';
import { linkMessages, type MessageStatusRow } from '../../queries/outbox.queries.js';
import { enqueue } from '../../messaging/outbox.js';
import { isOptedOut, toE164 } from '../../messaging/sms-consent.js';
import type { LinkSession } from './link-work.js';
import { findPatient, patientSecrets } from '../../queries/patients.queries.js';
import { findPlan } from '../../queries/plans.queries.js';
import { findCurrentPractice, findPracticeBrand, findPracticePhone, findPracticeSettings } from '../../queries/practices.queries.js';
import { presentBrand, type PracticeBrand } from '../../presenters/format.js';
import { patientName } from '../../presenters/patient.presenter.js';
import { readDate } from '../../validation/dates.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { channelRefused } from '../../messaging/communication-rules.js';

/**
 * Patient links: staff create one for a patient and one or more tasks (plan, forms, uploads); the patient opens it, proves their
 * date of birth and gets a short session scoped to that link. The code (256 bits) is shown once and
 * stored only as SHA-256; five wrong dates of birth lock the link for good and alert the practice;
 * per-IP limits as for sign-in. Every patient action is audited with actor type "patient link".
 */
/** Wrong dates of birth before a link locks for good (the shared throttle's account limit). */
export const MAX_DOB_ATTEMPTS = ACCOUNT_MAX_FAILURES;
/** Not a practice: the tenant context used when a code matches nothing, so both paths do the same work. */
const NO_PRACTICE = '00000000-0000-0000-0000-000000000000';

const codeHash = (code: string): string => createHash('sha256').update(code, 'utf8').digest('hex');

export interface LinkView {
  id: string;
  tasks: LinkTask[];
  createdAt: Date;
  expiresAt: Date;
  state: 'active' | 'expired' | 'revoked' | 'locked' | 'verified';
  messages: MessageStatusRow[];
}

const stateOf = (l: LinkRow, now: Date): LinkView['state'] => (l.locked_at ? 'locked' : l.revoked_at ? 'revoked' : l.expires_at <= now ? 'expired' : l.verified_at ? 'verified' : 'active');

export interface LinkDeps {
  db: Db;
  keyring: Keyring;
  publicUrl: URL;
}

/** The links page: whose (the patient's name; the audited `list` covers it) and every link with its messages. */
export async function patientLinks(d: { db: Db; keyring: Keyring }, actor: StaffActor, patientId: string, meta: Meta): Promise<{ patientName: string; links: LinkView[] }> {
  return work(d.db, actor, async (trx) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.sendLink', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'portal.send' });
    const links = await listLinks(trx, patientId);
    const messages = await linkMessages(trx, links.map((l) => l.id));
    await audit.record(trx, event(actor, meta, { action: 'list', resource: { type: 'portal_link' }, patientId, outcome: 'allowed', details: { count: links.length } }));
    const plain = await patientSecrets.open(new PracticeCrypto(d.keyring, trx, actor.practiceId), row);
    return {
      patientName: patientName(plain),
      links: links.map((l) => ({ id: l.id, tasks: l.tasks, createdAt: l.created_at, expiresAt: l.expires_at, state: stateOf(l, meta.now), messages: messages.filter((m) => m.link_id === l.id) })),
    };
  });
}

export type SendChannel = 'none' | 'email' | 'sms';

export interface NewLink {
  tasks: LinkTask[];
  planId?: string | undefined;
  formTemplateIds: string[];
  send: SendChannel;
}

export interface CreatedLink {
  code: string;
  expiresAt: Date;
  /** What happened to the message, if one was asked for. */
  message?: { channel: 'email' | 'sms'; status: 'queued' | 'suppressed' };
}

/**
 * A new link; the code is returned once. A plan link needs a presented plan of this patient; a
 * forms link needs current templates. Sending: email needs an address on file; a text needs a
 * mobile number and recorded consent (TCPA), and a number that opted out gets nothing — the
 * attempt is recorded as a suppressed message.
 */
export async function createLink(d: LinkDeps, actor: StaffActor, patientId: string, input: NewLink, meta: Meta): Promise<FormResult<CreatedLink>> {
  return work(d.db, actor, async (trx) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.sendLink', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'portal.send' });
    const tasks = LINK_TASKS.filter((t) => input.tasks.includes(t));
    if (tasks.length === 0) return { ok: false, error: 'Choose what the link is for.', field: 'tasks' };
    if (tasks.includes('plan_review')) {
      const plan = input.planId ? await findPlan(trx, input.planId) : undefined;
      if (!plan || plan.patient_id !== patientId) return { ok: false, error: 'Choose one of this patient’s treatment plans.', field: 'tasks' };
      if (plan.status !== 'presented') return { ok: false, error: 'Only a presented plan can be sent for the patient’s decision.', field: 'tasks' };
    }
    const formIds = tasks.includes('intake_forms') ? [...new Set(input.formTemplateIds)] : [];
    if (tasks.includes('intake_forms')) {
      const templates = formIds.length > 0 ? await findTemplates(trx, formIds) : [];
      if (formIds.length === 0 || templates.length !== formIds.length || templates.some((t) => t.archived_at)) return { ok: false, error: 'Choose one or more of the practice’s current forms.', field: 'tasks' };
    }
    const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
    let to: string | undefined;
    if (input.send !== 'none') {
      const contact = await patientSecrets.open(pc, row);
      if (input.send === 'email') {
        to = contact.email ?? undefined;
        if (!to) return { ok: false, error: 'This patient has no email address on file. Add one, or show the link instead.', field: 'send' };
      } else {
        to = contact.phone ? toE164(contact.phone) : undefined;
        if (!to) return { ok: false, error: 'This patient has no mobile number on file that can receive texts.', field: 'send' };
        if (!row.sms_consent_at) return { ok: false, error: 'No text-message consent is recorded for this patient. Record it on the patient’s edit page, or send by email.', field: 'send' };
      }
    }
    const days = (await findPracticeSettings(trx))?.portal_link_days ?? 7;
    const code = randomBytes(32).toString('base64url');
    const id = randomUUID();
    const expiresAt = new Date(meta.now.getTime() + days * 86_400_000);
    await insertLink(trx, {
      id,
      practice_id: actor.practiceId,
      patient_id: patientId,
      tasks,
      plan_id: tasks.includes('plan_review') ? input.planId : null,
      form_template_ids: formIds,
      code_hash: codeHash(code),
      created_by: actor.id,
      created_at: meta.now,
      expires_at: expiresAt,
    });
    await audit.record(trx, event(actor, meta, { action: 'link_create', resource: { type: 'portal_link', id }, patientId, outcome: 'allowed', details: { count: days } }));
    if (input.send === 'none' || !to) return { ok: true, value: { code, expiresAt } };

    const channel = input.send;
    // SECURITY: an SMS opt-out, or a confidential-communication rule the practice agreed to (§164.522(b)): recorded, never sent.
    const refused = (await channelRefused(trx, patientId, channel)) ? ('confidential_communication' as const) : undefined;
    const because = refused ?? (channel === 'sms' && (await isOptedOut(pc, to)) ? ('opted_out' as const) : undefined);
    const suppressed = because !== undefined;
    const params = { practiceName: (await findCurrentPractice(trx))?.name ?? 'Your dental office', link: new URL(`/l/${code}`, d.publicUrl).toString() };
    const messageId = await enqueue(trx, d.keyring, { practiceId: actor.practiceId, template: channel === 'sms' ? 'patient_link_sms' : 'patient_link_email', to, params, linkId: id, ...(because ? { suppressed: because } : {}) });
    await audit.record(
      trx,
      event(actor, meta, suppressed
        ? { action: 'message_suppressed', resource: { type: 'message', id: messageId }, patientId, outcome: 'denied', details: { channel, suppressed_because: because, reference_id: id } }
        : { action: 'message_queue', resource: { type: 'message', id: messageId }, patientId, outcome: 'allowed', details: { channel, reference_id: id } }),
    );
    return { ok: true, value: { code, expiresAt, message: { channel, status: suppressed ? 'suppressed' : 'queued' } } };
  });
}

export async function revokeLink(db: Db, actor: StaffActor, linkId: string, meta: Meta): Promise<string> {
  return work(db, actor, async (trx) => {
    const link = await findLink(trx, linkId);
    if (!link) throw new AccessDenied({ resource: { type: 'portal_link', id: linkId } });
    const { record } = await loadPatientRecord(trx, actor, link.patient_id, meta.now);
    ensure(authorize(actor, 'patient.sendLink', record, meta.now), { resource: { type: 'portal_link', id: linkId }, patientId: link.patient_id, permission: 'portal.send' });
    await updateLink(trx, linkId, { revoked_at: meta.now });
    await audit.record(trx, event(actor, meta, { action: 'link_revoke', resource: { type: 'portal_link', id: linkId }, patientId: link.patient_id, outcome: 'allowed' }));
    return link.patient_id;
  });
}

export type LinkOpen = { state: 'open'; brand?: PracticeBrand } | { state: 'gone'; phone: string | null; brand?: PracticeBrand };

/** The practice of the link in context, as its pages show it. */
async function brandOf(trx: Knex.Transaction): Promise<PracticeBrand | undefined> {
  const row = await findPracticeBrand(trx);
  return row ? presentBrand(row) : undefined;
}

/** Whether a link can still be used (for its first page). Unknown codes look open: nothing is revealed. */
export async function linkState(db: Db, code: string, now: Date): Promise<LinkOpen> {
  const hash = codeHash(code);
  const practiceId = await linkPracticeId(db.knex, hash);
  return db.withPractice(practiceId ?? NO_PRACTICE, { kind: 'anonymous' }, async (trx): Promise<LinkOpen> => {
    const link = await findLinkByHashForUpdate(trx, hash);
    if (!link) return { state: 'open' };
    const state = stateOf(link, now);
    const brand = await brandOf(trx);
    const withBrand = brand ? { brand } : {};
    return state === 'active' || state === 'verified' ? { state: 'open', ...withBrand } : { state: 'gone', phone: await findPracticePhone(trx), ...withBrand };
  });
}

export type DobResult =
  | ({ ok: true } & LinkSession)
  | {
      ok: false;
      gone: boolean;
      phone: string | null;
      brand?: PracticeBrand;
      /** The date could not be read (its format): nothing was counted; the message says the format. */
      formatError?: string;
      /** Tries left before the link locks, when it is a real link and few are left. */
      remaining?: number;
    };

/**
 * The date-of-birth check. The date is read in the practice's format: with separators or as digits
 * only (MMDDYYYY), or ISO; a date that cannot be read (or does not exist) is a form error and is not
 * counted. SECURITY: every readable date counts, whatever its spelling; the same answer and the
 * same database work for an unknown code and a wrong date (until a real link's last try, which is
 * announced); the fifth wrong date locks the link for good (later right dates are refused too) and
 * raises an alert; per-IP failures count in the shared throttle (scope `dob`).
 */
export async function verifyDob(d: { db: Db; keyring: Keyring }, code: string, dob: string, meta: Meta): Promise<DobResult> {
  if (await ipBlocked(d.db.knex, 'dob', meta.ip, meta.now)) return { ok: false, gone: false, phone: null };
  const hash = codeHash(code);
  const practiceId = await linkPracticeId(d.db.knex, hash);
  const outcome = await d.db.withPractice(practiceId ?? NO_PRACTICE, { kind: 'anonymous' }, async (trx): Promise<DobResult> => {
    const link = await findLinkByHashForUpdate(trx, hash);
    const brand = link ? await brandOf(trx) : undefined;
    const withBrand = brand ? { brand } : {};
    const reading = readDate(dob, brand?.fmt.format ?? 'MM/DD/YYYY', 'your date of birth');
    if (!reading.ok) return { ok: false, gone: false, phone: null, formatError: reading.error, ...withBrand };
    if (!link) return { ok: false, gone: false, phone: null };
    const phone = await findPracticePhone(trx);
    const state = stateOf(link, meta.now);
    if (state !== 'active' && state !== 'verified') return { ok: false, gone: true, phone, ...withBrand };
    const patient = await findPatient(trx, link.patient_id);
    const stored = patient ? (await patientSecrets.open(new PracticeCrypto(d.keyring, trx, link.practice_id), patient)).date_of_birth : null;
    const actor = { kind: 'patient_link' as const, id: link.id };
    const base = { practiceId: link.practice_id, actor, resource: { type: 'portal_link' as const, id: link.id }, patientId: link.patient_id, ip: meta.ip, requestId: meta.requestId };
    if (!stored || reading.iso !== stored) {
      const failures = link.failed_attempts + 1;
      const lock = failures >= MAX_DOB_ATTEMPTS;
      await updateLink(trx, link.id, { failed_attempts: failures, ...(lock ? { locked_at: meta.now } : {}) });
      await audit.record(trx, { ...base, action: 'dob_failed', outcome: 'denied', details: { count: failures } });
      if (lock) {
        await audit.record(trx, { ...base, actor: { kind: 'system', id: 'portal' }, action: 'link_locked', outcome: 'allowed', details: { count: failures } });
        await raiseAlert(trx, { practiceId: link.practice_id, kind: 'link_lockout', severity: 'warning', details: { target_type: 'portal_link', target_id: link.id, count: failures } });
        return { ok: false, gone: true, phone, ...withBrand };
      }
      const remaining = MAX_DOB_ATTEMPTS - failures;
      return { ok: false, gone: false, phone: remaining === 1 ? phone : null, ...withBrand, ...(remaining === 1 ? { remaining } : {}) };
    }
    await updateLink(trx, link.id, { verified_at: meta.now });
    await audit.record(trx, { ...base, action: 'link_open', outcome: 'allowed' });
    return { ok: true, practiceId: link.practice_id, linkId: link.id, patientId: link.patient_id, tasks: link.tasks, planId: link.plan_id, formTemplateIds: link.form_template_ids };
  });
  if (!outcome.ok && !outcome.gone && !outcome.formatError) await countIpFailure(d.db.knex, 'dob', meta.ip, meta.now);
  return outcome;
}

/** The link behind a patient session, still usable (not revoked, expired or locked since). */
export async function sessionLink(db: Db, practiceId: string, linkId: string, now: Date): Promise<{ link: LinkRow; brand?: PracticeBrand } | undefined> {
  return db.withPractice(practiceId, { kind: 'patient_link', id: linkId }, async (trx: Knex.Transaction) => {
    const link = await findLink(trx, linkId);
    if (!link || (stateOf(link, now) !== 'verified' && stateOf(link, now) !== 'active')) return undefined;
    const brand = await brandOf(trx);
    return { link, ...(brand ? { brand } : {}) };
  });
}
