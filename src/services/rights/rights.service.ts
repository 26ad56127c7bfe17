import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import type { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { findPatients, patientSecrets } from '../../queries/patients.queries.js';
import {
  disclosureSecrets,
  findRequest,
  insertDisclosure,
  insertRequest,
  listRequests,
  markOverdueAlerted,
  patientDisclosures,
  requestSecrets,
  requestsDue,
  updateRequest,
  amendmentRequestSecrets,
  findRecordAmendment,
  insertRecordAmendment,
  recordAmendmentsOf,
  targetBelongs,
  amendmentTargets,
  patientAccessEvents,
  staffDirectory,
  updateRecordAmendment,
  type AmendmentTarget,
  insertRestriction,
  endRestriction,
  findRestriction,
  patientRestrictions,
  restrictionSecrets,
  type ChannelRule,
  type RequestKind,
  type RequestRow,
} from '../../queries/rights.queries.js';
import { exportStaffNames } from '../../queries/exports.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { staffCryptoWork, staffEvent } from '../staff-work.js';
import { planSecrets } from '../../queries/plans.queries.js';
import { ACTION_LABELS } from '../../presenters/audit.presenter.js';
import { findPracticeSettings } from '../../queries/practices.queries.js';
import { linkEvent, linkWork, type LinkSession } from '../links/link-work.js';

/**
 * Patients' rights under the Privacy Rule (docs/PATIENT-RIGHTS.md): the register of requests with
 * their legal due dates, and the disclosures with the accounting a patient may ask for.
 */

const DAY = 86_400_000;

/** Days to answer, by kind: access 30 (§164.524(b)(2)), amendment 60 (§164.526(b)(2)), accounting 60 (§164.528(c)(1)); restrictions and confidential communications 30 by the practice's policy. */
export const DUE_DAYS: Record<RequestKind, number> = { access: 30, amendment: 60, accounting: 60, restriction: 30, confidential_communication: 30 };
/** The one extension each rule allows, with a written reason given to the patient within the first period. */
export const EXTENSION_DAYS = 30;
/** Requests due within this many days count as "due soon" on the home page. */
export const DUE_SOON_DAYS = 7;

export function dueDate(kind: RequestKind, receivedAt: Date): Date {
  return new Date(receivedAt.getTime() + DUE_DAYS[kind] * DAY);
}

export interface RequestView {
  id: string;
  patientId: string;
  patientName: string;
  kind: RequestKind;
  receivedVia: string;
  receivedAt: Date;
  dueAt: Date;
  overdue: boolean;
  details: string | null;
  extended: { at: Date; reason: string; noticeAt: Date | null } | null;
  status: RequestRow['status'];
  outcomeNote: string | null;
  feeCents: number | null;
  closedAt: Date | null;
}

async function present(trx: Knex.Transaction, pc: PracticeCrypto, rows: RequestRow[], now: Date, actor: StaffActor, meta: Meta): Promise<RequestView[]> {
  const names = new Map<string, string>();
  // One read for every patient the page names (not one per request).
  const patients = new Map((await findPatients(trx, [...new Set(rows.map((r) => r.patient_id))])).map((p) => [p.id, p]));
  const views: RequestView[] = [];
  for (const r of rows) {
    if (!names.has(r.patient_id)) {
      const p = patients.get(r.patient_id);
      const v = p ? await patientSecrets.open(pc, p) : undefined;
      names.set(r.patient_id, v ? `${v.family_name ?? ''}, ${v.given_name ?? ''}` : 'Patient');
      // SECURITY: each patient named on the page is an audited read.
      await audit.record(trx, staffEvent(actor, meta, { action: 'list', resource: { type: 'patient_request' }, patientId: r.patient_id, outcome: 'allowed' }));
    }
    const s = await requestSecrets.open(pc, r as RequestRow & Record<string, unknown>);
    views.push({
      id: r.id,
      patientId: r.patient_id,
      patientName: names.get(r.patient_id)!,
      kind: r.kind,
      receivedVia: r.received_via,
      receivedAt: r.received_at,
      dueAt: r.due_at,
      overdue: r.status === 'open' && r.due_at < now,
      details: s.details,
      extended: r.extended_at ? { at: r.extended_at, reason: s.extension_reason ?? '', noticeAt: r.extension_notice_at } : null,
      status: r.status,
      outcomeNote: s.outcome_note,
      feeCents: r.fee_cents,
      closedAt: r.closed_at,
    });
  }
  return views;
}

/** The register: open requests by due date, then the latest closed ones. */
export async function requestsRegister(d: { db: Db; keyring: Keyring }, actor: StaffActor, meta: Meta): Promise<{ open: RequestView[]; closed: RequestView[] }> {
  ensure(authorize(actor, 'practice.manageRightsRegister'), { permission: 'rights.manage' });
  return staffCryptoWork(d, actor, async (trx, pc) => ({
    open: await present(trx, pc, await listRequests(trx, { open: true, limit: 200 }), meta.now, actor, meta),
    closed: await present(trx, pc, await listRequests(trx, { open: false, limit: 50 }), meta.now, actor, meta),
  }));
}

/** A patient's requests, amendments and the restrictions or communication rules the practice answered; the parts of the record an amendment may concern. */
export async function patientRights(
  d: { db: Db; keyring: Keyring },
  actor: StaffActor,
  patientId: string,
  meta: Meta,
): Promise<{ requests: RequestView[]; restrictions: RestrictionView[]; amendments: AmendmentView[]; targets: { type: AmendmentTarget; id: string; label: string }[] }> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    const requests = await present(trx, pc, [...(await listRequests(trx, { open: true, patientId, limit: 100 })), ...(await listRequests(trx, { open: false, patientId, limit: 100 }))], meta.now, actor, meta);
    const amendments = await amendmentViews(trx, pc, [patientId]);
    const targets = await targetChoices(trx, pc, patientId, 'Demographics (name, birth date, contact, address, insurance)');
    await audit.record(trx, staffEvent(actor, meta, { action: 'list', resource: { type: 'treatment_plan' }, patientId, outcome: 'allowed', details: { count: targets.length - 1 } }));
    return { requests, restrictions: await restrictionsOf(trx, pc, patientId), amendments, targets };
  });
}

export interface TargetChoice {
  type: AmendmentTarget;
  id: string;
  label: string;
}

/** The parts of the record an amendment may name: the details, the notes by date, the plans by title (the caller audits the read). */
async function targetChoices(trx: Knex.Transaction, pc: PracticeCrypto, patientId: string, detailsLabel: string): Promise<TargetChoice[]> {
  const targets: TargetChoice[] = [{ type: 'demographics', id: patientId, label: detailsLabel }];
  for (const n of await amendmentTargets(trx, patientId)) targets.push({ type: n.type, id: n.id, label: n.type === 'clinical_note' ? `Visit note of ${n.at.toISOString().slice(0, 10)}` : `Treatment plan “${(await planSecrets.open(pc, n as never)).title ?? ''}”` });
  return targets;
}

export async function recordRequest(
  d: { db: Db; keyring: Keyring },
  actor: StaffActor,
  patientId: string,
  input: { kind: RequestKind; receivedVia: 'phone' | 'paper' | 'in_person' | 'email'; receivedAt: Date; details: string },
  meta: Meta,
): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    if (input.receivedAt.getTime() > meta.now.getTime() + DAY) return { ok: false, error: 'The day the request was received cannot be in the future.', field: 'receivedAt' };
    const id = randomUUID();
    await insertRequest(trx, { id, practice_id: actor.practiceId, patient_id: patientId, kind: input.kind, received_via: input.receivedVia, received_at: input.receivedAt, due_at: dueDate(input.kind, input.receivedAt), recorded_by: actor.id, ...(await requestSecrets.seal(pc, id, { details: input.details || null })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'patient_request', id }, patientId, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

async function openRequest(trx: Knex.Transaction, actor: StaffActor, id: string, now: Date): Promise<RequestRow> {
  const r = await findRequest(trx, id);
  if (!r) throw new AccessDenied({ resource: { type: 'patient_request', id } });
  const { record } = await loadPatientRecord(trx, actor, r.patient_id, now);
  ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient_request', id }, patientId: r.patient_id, permission: 'rights.manage' });
  return r;
}

/** The patient a request belongs to, after checking the actor may handle it (AccessDenied otherwise). */
export async function requestPatientId(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, meta: Meta): Promise<string> {
  return staffCryptoWork(d, actor, async (trx) => (await openRequest(trx, actor, id, meta.now)).patient_id);
}

/** The one 30-day extension: a written reason, and the day the patient was told (within the first period). */
export async function extendRequest(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, input: { reason: string; noticeAt: Date }, meta: Meta): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const r = await openRequest(trx, actor, id, meta.now);
    if (r.status !== 'open') return { ok: false, error: 'This request is already answered.' };
    if (r.extended_at) return { ok: false, error: 'This request was already extended once; the rule allows one extension.' };
    if (input.noticeAt > r.due_at) return { ok: false, error: 'The patient must be told of the extension before the first due date.', field: 'noticeAt' };
    if (input.noticeAt < r.received_at) return { ok: false, error: 'The notice cannot be before the request was received.', field: 'noticeAt' };
    await updateRequest(trx, id, { due_at: new Date(r.due_at.getTime() + EXTENSION_DAYS * DAY), extended_at: meta.now, extension_notice_at: input.noticeAt, ...(await requestSecrets.seal(pc, id, { extension_reason: input.reason })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'request_extend', resource: { type: 'patient_request', id }, patientId: r.patient_id, outcome: 'allowed', details: { count: EXTENSION_DAYS } }));
    return { ok: true, value: r.patient_id };
  });
}

/** Answers a request: fulfilled, denied (with the reason) or withdrawn; the fee charged for access copies (cost-based, may be zero). */
export async function closeRequest(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, input: { status: 'fulfilled' | 'denied' | 'withdrawn'; note: string; feeCents: number | null }, meta: Meta): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const r = await openRequest(trx, actor, id, meta.now);
    if (r.status !== 'open') return { ok: false, error: 'This request is already answered.' };
    if (input.status === 'denied' && !input.note) return { ok: false, error: 'Write the reason for the denial: the patient receives it in writing.', field: 'note' };
    await updateRequest(trx, id, { status: input.status, handled_by: actor.id, closed_at: meta.now, fee_cents: input.feeCents, ...(await requestSecrets.seal(pc, id, { outcome_note: input.note || null })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'request_close', resource: { type: 'patient_request', id }, patientId: r.patient_id, outcome: 'allowed' }));
    return { ok: true, value: r.patient_id };
  });
}

/** For the home page: open requests past due and due within a week (counts only). */
export async function rightsDue(d: { db: Db; keyring: Keyring }, actor: StaffActor, now: Date): Promise<{ overdue: number; soon: number } | undefined> {
  if (!authorize(actor, 'practice.manageRightsRegister')) return undefined;
  return staffCryptoWork(d, actor, (trx) => requestsDue(trx, now, DUE_SOON_DAYS * DAY));
}

/** The daily job, per practice: one alert when requests have passed their due date unanswered. */
export async function alertOverdueRequests(db: Db, practiceId: string, now: Date): Promise<number> {
  return db.withPractice(practiceId, { kind: 'system', id: 'patient-rights' }, async (trx) => {
    const n = await markOverdueAlerted(trx, now);
    if (n > 0) await raiseAlert(trx, { practiceId, kind: 'rights_request_overdue', severity: 'warning', details: { count: n } });
    return n;
  });
}

// --- Disclosures and their accounting ----------------------------------------------------------

export const DISCLOSURE_PURPOSES = ['treatment', 'payment', 'operations', 'to_patient', 'authorized', 'public_health', 'court_order', 'law_enforcement', 'health_oversight', 'research', 'records_export', 'other'] as const;
export type DisclosurePurpose = (typeof DISCLOSURE_PURPOSES)[number];

/**
 * §164.528(a)(1): an accounting need not include disclosures for treatment, payment or health care
 * operations, to the patient, or made with the patient's written authorization.
 */
export const EXCLUDED_PURPOSES: readonly DisclosurePurpose[] = ['treatment', 'payment', 'operations', 'to_patient', 'authorized'];

export interface DisclosureView {
  id: string;
  disclosedAt: Date;
  purpose: DisclosurePurpose;
  excludable: boolean;
  recipientName: string;
  recipientAddress: string | null;
  description: string;
  recordedBy: string;
  source: 'manual' | 'export' | 'patient_link';
}

export async function recordDisclosure(
  d: { db: Db; keyring: Keyring },
  actor: StaffActor,
  patientId: string,
  input: { disclosedAt: Date; purpose: DisclosurePurpose; recipientName: string; recipientAddress: string; description: string },
  meta: Meta,
): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    if (input.disclosedAt.getTime() > meta.now.getTime() + DAY) return { ok: false, error: 'The day of the disclosure cannot be in the future.', field: 'disclosedAt' };
    const id = await writeDisclosure(trx, pc, { patientId, disclosedAt: input.disclosedAt, purpose: input.purpose, recipient: { name: input.recipientName, address: input.recipientAddress || null }, description: input.description, recordedBy: actor.id, source: 'manual' });
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'disclosure', id }, patientId, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/** One disclosure row (also written by an export's download). */
export async function writeDisclosure(trx: Knex.Transaction, pc: PracticeCrypto, o: { patientId: string; disclosedAt: Date; purpose: DisclosurePurpose; recipient: { name: string; address: string | null }; description: string; recordedBy: string; source: 'manual' | 'export' | 'patient_link'; exportId?: string }): Promise<string> {
  const id = randomUUID();
  await insertDisclosure(trx, { id, practice_id: pc.practiceId, patient_id: o.patientId, disclosed_at: o.disclosedAt, purpose: o.purpose, source: o.source, export_id: o.exportId ?? null, recorded_by: o.recordedBy, ...(await disclosureSecrets.seal(pc, id, { recipient: o.recipient, description: o.description })) });
  return id;
}

/**
 * The accounting of disclosures for a patient (§164.528): the last six years by default or a chosen
 * period; the excludable kinds only when asked. Reading it is an audited view of the patient.
 */
export async function accountingOfDisclosures(d: { db: Db; keyring: Keyring }, actor: StaffActor, patientId: string, o: { from?: Date; to?: Date; includeExcluded: boolean }, meta: Meta): Promise<{ from: Date; to: Date; includeExcluded: boolean; patientName: string; rows: DisclosureView[] }> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    const to = o.to ?? new Date(meta.now.getTime() + DAY);
    const from = o.from ?? new Date(Date.UTC(meta.now.getUTCFullYear() - 6, meta.now.getUTCMonth(), meta.now.getUTCDate()));
    await audit.record(trx, staffEvent(actor, meta, { action: 'view', resource: { type: 'disclosure' }, patientId, outcome: 'allowed' }));
    const staff = new Map((await exportStaffNames(trx)).map((u) => [u.id, u.display_name]));
    const rows = await patientDisclosures(trx, patientId, from, to, o.includeExcluded ? undefined : DISCLOSURE_PURPOSES.filter((p) => !EXCLUDED_PURPOSES.includes(p)));
    const views: DisclosureView[] = [];
    for (const r of rows) {
      const s = await disclosureSecrets.open(pc, r as never);
      const recipient = (s.recipient ?? { name: '' }) as { name: string; address?: string | null };
      views.push({ id: r.id, disclosedAt: r.disclosed_at, purpose: r.purpose as DisclosurePurpose, excludable: EXCLUDED_PURPOSES.includes(r.purpose as DisclosurePurpose), recipientName: recipient.name, recipientAddress: recipient.address ?? null, description: s.description ?? '', recordedBy: r.source === 'patient_link' ? 'The patient, through their link' : (staff.get(r.recorded_by) ?? 'Former staff member'), source: r.source });
    }
    const v = await patientSecrets.open(pc, row);
    return { from, to, includeExcluded: o.includeExcluded, patientName: `${v.given_name ?? ''} ${v.family_name ?? ''}`.trim(), rows: views };
  });
}

// --- Restrictions and confidential communications (§164.522) ----------------------------------

export interface RestrictionView {
  id: string;
  kind: 'restriction' | 'confidential_communication';
  decision: 'agreed' | 'refused';
  channel: ChannelRule | null;
  description: string;
  refusalReason: string | null;
  decidedAt: Date;
  endedAt: Date | null;
}

/** Records the practice's answer to a restriction or a confidential-communication request. */
export async function recordRestriction(
  d: { db: Db; keyring: Keyring },
  actor: StaffActor,
  patientId: string,
  input: { kind: 'restriction' | 'confidential_communication'; decision: 'agreed' | 'refused'; channel: ChannelRule | null; description: string; refusalReason: string },
  meta: Meta,
): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    if (input.kind === 'confidential_communication' && !input.channel) return { ok: false, error: 'Choose how the patient wants to be contacted.', field: 'channel' };
    if (input.decision === 'refused' && !input.refusalReason) return { ok: false, error: 'Write why the practice cannot agree: the patient is told.', field: 'refusalReason' };
    const id = randomUUID();
    await insertRestriction(trx, {
      id,
      practice_id: actor.practiceId,
      patient_id: patientId,
      kind: input.kind,
      decision: input.decision,
      channel: input.kind === 'confidential_communication' ? input.channel : null,
      decided_by: actor.id,
      decided_at: meta.now,
      ...(await restrictionSecrets.seal(pc, id, { description: input.description, refusal_reason: input.decision === 'refused' ? input.refusalReason : null })),
    });
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'patient_request', id }, patientId, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/**
 * Ends an agreed restriction or communication rule (the patient withdrew it, or the practice told
 * them it ends, §164.522(a)(2)); the outbox stops honouring it at once. Returns the patient.
 */
export async function endPatientRestriction(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, meta: Meta): Promise<{ patientId: string; error?: string }> {
  return staffCryptoWork(d, actor, async (trx) => {
    const r = await findRestriction(trx, id);
    if (!r) throw new AccessDenied({ resource: { type: 'patient_request', id } });
    const { record } = await loadPatientRecord(trx, actor, r.patient_id, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient_request', id }, patientId: r.patient_id, permission: 'rights.manage' });
    if (r.decision !== 'agreed') return { patientId: r.patient_id, error: 'A refused request has nothing to end.' };
    if ((await endRestriction(trx, id, actor.id, meta.now)) === 0) return { patientId: r.patient_id, error: 'This was already ended; nothing changed.' };
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'patient_request', id }, patientId: r.patient_id, outcome: 'allowed' }));
    return { patientId: r.patient_id };
  });
}

export async function restrictionsOf(trx: Knex.Transaction, pc: PracticeCrypto, patientId: string): Promise<RestrictionView[]> {
  const out: RestrictionView[] = [];
  for (const r of await patientRestrictions(trx, patientId)) {
    const s = await restrictionSecrets.open(pc, r as never);
    out.push({ id: r.id, kind: r.kind, decision: r.decision, channel: r.channel, description: s.description ?? '', refusalReason: s.refusal_reason, decidedAt: r.decided_at, endedAt: r.ended_at });
  }
  return out;
}

// --- Amendments the patient asks for (§164.526) ------------------------------------------------

export interface AmendmentView {
  id: string;
  targetType: AmendmentTarget;
  targetId: string;
  requestedChange: string;
  requestedAt: Date;
  decision: 'pending' | 'accepted' | 'denied';
  /** Accepted: the amendment as appended. Denied: the reason. */
  response: string | null;
  decidedAt: Date | null;
  disagreement: string | null;
  disagreementAt: Date | null;
}

/** A patient's amendments, decrypted (the caller has audited the read of the record they belong to). */
export async function amendmentViews(trx: Knex.Transaction, pc: PracticeCrypto, patientIds: readonly string[]): Promise<AmendmentView[]> {
  const out: AmendmentView[] = [];
  for (const a of await recordAmendmentsOf(trx, patientIds)) {
    const s = await amendmentRequestSecrets.open(pc, a as never);
    out.push({ id: a.id, targetType: a.target_type, targetId: a.target_id, requestedChange: s.requested_change ?? '', requestedAt: a.requested_at, decision: a.decision, response: s.response, decidedAt: a.decided_at, disagreement: s.disagreement, disagreementAt: a.disagreement_at });
  }
  return out;
}

/**
 * The patient asks to amend part of their record: a request in the register (60 days) and the
 * amendment itself, pending, linked to its target.
 */
export async function requestAmendment(
  d: { db: Db; keyring: Keyring },
  actor: StaffActor,
  patientId: string,
  input: { targetType: AmendmentTarget; targetId: string; change: string; receivedVia: 'phone' | 'paper' | 'in_person' | 'email'; receivedAt: Date },
  meta: Meta,
): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient', id: patientId }, patientId, permission: 'rights.manage' });
    if (!(await targetBelongs(trx, patientId, input.targetType, input.targetId))) return { ok: false, error: 'Choose a part of this patient’s record.', field: 'target' };
    const { requestId, amendmentId } = await writeAmendmentRequest(trx, pc, { patientId, ...input, recordedBy: actor.id });
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'patient_request', id: requestId }, patientId, outcome: 'allowed' }));
    return { ok: true, value: amendmentId };
  });
}

/** The request in the register (60 days) and the pending amendment linked to its target. */
async function writeAmendmentRequest(
  trx: Knex.Transaction,
  pc: PracticeCrypto,
  o: { patientId: string; targetType: AmendmentTarget; targetId: string; change: string; receivedVia: 'phone' | 'paper' | 'in_person' | 'email' | 'patient_link'; receivedAt: Date; recordedBy: string },
): Promise<{ requestId: string; amendmentId: string }> {
  const requestId = randomUUID();
  await insertRequest(trx, { id: requestId, practice_id: pc.practiceId, patient_id: o.patientId, kind: 'amendment', received_via: o.receivedVia, received_at: o.receivedAt, due_at: dueDate('amendment', o.receivedAt), recorded_by: o.recordedBy, ...(await requestSecrets.seal(pc, requestId, { details: o.change })) });
  const amendmentId = randomUUID();
  await insertRecordAmendment(trx, { id: amendmentId, practice_id: pc.practiceId, patient_id: o.patientId, request_id: requestId, target_type: o.targetType, target_id: o.targetId, requested_at: o.receivedAt, ...(await amendmentRequestSecrets.seal(pc, amendmentId, { requested_change: o.change })) });
  return { requestId, amendmentId };
}

// --- Through the patient's link: "Ask for a correction" -----------------------------------------

/** What the patient may ask to correct, and what they already asked through this link's record (pending or answered). */
export async function linkAmendmentPage(d: { db: Db; keyring: Keyring }, link: LinkSession, meta: Meta): Promise<{ targets: TargetChoice[]; asked: AmendmentView[] }> {
  return linkWork(d, link, async (trx, pc) => {
    const targets = await targetChoices(trx, pc, link.patientId, 'My details (name, birth date, contact, address, insurance)');
    await audit.record(trx, linkEvent(link, meta, { action: 'list', resource: { type: 'treatment_plan' }, outcome: 'allowed', details: { count: targets.length - 1 } }));
    return { targets, asked: await amendmentViews(trx, pc, [link.patientId]) };
  });
}

/** The patient asks for a correction through their link: a request in the register, due in 60 days, for the office to answer. */
export async function requestAmendmentByLink(d: { db: Db; keyring: Keyring }, link: LinkSession, input: { targetType: AmendmentTarget; targetId: string; change: string }, meta: Meta): Promise<FormResult<string>> {
  return linkWork(d, link, async (trx, pc) => {
    if (!(await targetBelongs(trx, link.patientId, input.targetType, input.targetId))) return { ok: false, error: 'Choose which part of your record is wrong.', field: 'target' };
    const open = (await recordAmendmentsOf(trx, [link.patientId])).filter((a) => a.decision === 'pending' && a.requested_at.getTime() > meta.now.getTime() - DAY);
    if (open.length >= 5) return { ok: false, error: 'You have sent several requests today; the office will answer them. Call the office to add more.' };
    const { requestId, amendmentId } = await writeAmendmentRequest(trx, pc, { patientId: link.patientId, ...input, receivedVia: 'patient_link', receivedAt: meta.now, recordedBy: link.linkId });
    await audit.record(trx, linkEvent(link, meta, { action: 'create', resource: { type: 'patient_request', id: requestId }, outcome: 'allowed' }));
    return { ok: true, value: amendmentId };
  });
}

/** Accepts (the text appended beside the original) or denies (the reason) an amendment; closes its request. */
export async function decideAmendment(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, input: { decision: 'accepted' | 'denied'; text: string }, meta: Meta): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const a = await findRecordAmendment(trx, id);
    if (!a) throw new AccessDenied({ resource: { type: 'patient_request', id } });
    const { record } = await loadPatientRecord(trx, actor, a.patient_id, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient_request', id }, patientId: a.patient_id, permission: 'rights.manage' });
    if (a.decision !== 'pending') return { ok: false, error: 'This amendment is already decided.' };
    if (!input.text) return { ok: false, error: input.decision === 'accepted' ? 'Write the amendment as it is to be appended to the record.' : 'Write the reason for the denial: the patient receives it, with their right to disagree.', field: 'text' };
    await updateRecordAmendment(trx, id, { decision: input.decision, decided_by: actor.id, decided_at: meta.now, ...(await amendmentRequestSecrets.seal(pc, id, { response: input.text })) });
    if (a.request_id) await updateRequest(trx, a.request_id, { status: input.decision === 'accepted' ? 'fulfilled' : 'denied', handled_by: actor.id, closed_at: meta.now, ...(await requestSecrets.seal(pc, a.request_id, { outcome_note: input.text })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'request_close', resource: { type: 'patient_request', id: a.request_id ?? id }, patientId: a.patient_id, outcome: 'allowed' }));
    return { ok: true, value: a.patient_id };
  });
}

/** The patient an amendment belongs to, after checking the actor may handle it (AccessDenied otherwise). */
export async function amendmentPatientId(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, meta: Meta): Promise<string> {
  return staffCryptoWork(d, actor, async (trx) => {
    const a = await findRecordAmendment(trx, id);
    if (!a) throw new AccessDenied({ resource: { type: 'patient_request', id } });
    const { record } = await loadPatientRecord(trx, actor, a.patient_id, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient_request', id }, patientId: a.patient_id, permission: 'rights.manage' });
    return a.patient_id;
  });
}

/** The patient's statement of disagreement with a denial: appended wherever the denial goes. */
export async function addDisagreement(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, statement: string, meta: Meta): Promise<FormResult<string>> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const a = await findRecordAmendment(trx, id);
    if (!a) throw new AccessDenied({ resource: { type: 'patient_request', id } });
    const { record } = await loadPatientRecord(trx, actor, a.patient_id, meta.now);
    ensure(authorize(actor, 'patient.manageRights', record), { resource: { type: 'patient_request', id }, patientId: a.patient_id, permission: 'rights.manage' });
    if (a.decision !== 'denied') return { ok: false, error: 'A statement of disagreement answers a denied amendment.' };
    if (a.disagreement) return { ok: false, error: 'The patient’s statement is already recorded.' };
    await updateRecordAmendment(trx, id, { disagreement_at: meta.now, ...(await amendmentRequestSecrets.seal(pc, id, { disagreement: statement })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'patient_request', id: a.request_id ?? id }, patientId: a.patient_id, outcome: 'allowed' }));
    return { ok: true, value: a.patient_id };
  });
}

// --- "Who saw my record" for the patient (through their link) -------------------------------

export interface AccessReportLine {
  at: Date;
  what: string;
  /** The staff member's name; null when the practice shows roles only. */
  who: string | null;
  role: string;
  location: string;
  emergency: boolean;
}

const ACCESS_WORDS: Record<string, string> = {
  'view:patient': 'Opened your chart',
  'view:clinical_note': 'Read your clinical notes',
  'view:treatment_plan': 'Looked at your treatment plans',
  'view:document': 'Opened a document or image',
  'view:disclosure': 'Looked at the list of disclosures of your information',
  'list:patient': 'Saw your name in a list',
  'list:document': 'Saw the list of your documents',
  'list:patient_request': 'Saw your name in the list of requests',
  'list:treatment_plan': 'Saw the list of your plans',
  'search:patient': 'Found you in a search',
  'print:treatment_plan': 'Printed your treatment plan',
  'download:document': 'Downloaded a document or image',
  'download:export': 'Downloaded a copy of your records',
  'export:export': 'Exported your records',
  'list:portal_link': 'Looked at the links sent to you',
  'link_create:portal_link': 'Made a link for you (like this one)',
  'link_revoke:portal_link': 'Ended a link made for you',
  'message_queue:message': 'Sent you a message',
  'message_suppressed:message': 'Held back a message to you (your contact choice)',
  break_glass: 'Used emergency access to your record',
};

/**
 * The accesses to the patient's record over the last `days` (default a year), from the audit log:
 * when, who (name, role, their locations) and what kind of access. Nothing is left out silently:
 * every event by a staff member about this patient is a line, emergency access always marked with
 * its reason. Reading the report is itself audited (as the patient's link).
 */
export async function accessReportForLink(d: { db: Db }, link: { practiceId: string; linkId: string; patientId: string }, meta: Meta, days = 365): Promise<AccessReportLine[]> {
  return d.db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, async (trx) => {
    const since = new Date(meta.now.getTime() - days * DAY);
    const events = await patientAccessEvents(trx, link.patientId, since, 2000);
    const staff = await staffDirectory(trx);
    // The practice may show the staff member's role only (security settings); the role, location and what are always there.
    const names = (await findPracticeSettings(trx))?.access_report_names ?? true;
    await audit.record(trx, { practiceId: link.practiceId, actor: { kind: 'patient_link', id: link.linkId }, action: 'view', resource: { type: 'audit_log' }, patientId: link.patientId, outcome: 'allowed', ...(meta.ip ? { ip: meta.ip } : {}), ...(meta.requestId ? { requestId: meta.requestId } : {}), details: { count: events.length } });
    return events.map((e) => {
      const who = staff.get(e.actor_id);
      const emergency = e.reason === 'emergency' || e.action === 'break_glass';
      const what = ACCESS_WORDS[`${e.action}:${e.resource_type ?? ''}`] ?? ACCESS_WORDS[e.action] ?? ACTION_LABELS[e.action as keyof typeof ACTION_LABELS] ?? e.action.replace(/_/g, ' ');
      return {
        at: e.occurred_at,
        what: emergency && e.action !== 'break_glass' ? `${what} — emergency access (reason: ${(e.reason ?? 'emergency').replace(/_/g, ' ')})` : e.outcome === 'denied' ? `${what} — refused` : what,
        who: names ? (who?.name ?? 'A former staff member') : null,
        role: who?.roles.join(', ') || 'Staff',
        location: who?.locations.join(', ') || '—',
        emergency,
      };
    });
  });
}
