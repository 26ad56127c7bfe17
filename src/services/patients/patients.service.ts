import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import { NAME_PREFIX_LENGTH, normalizeName } from '../../crypto/blind-index.js';
import type { DateFormat } from '../../presenters/format.js';
import { readDate } from '../../validation/dates.js';
import type { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { coversLocation } from '../../policies/actor.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import type { PatientRecord } from '../../policies/patient.policy.js';
import { presentChart, presentForm, presentSummary, type PatientChartView, type PatientFormValues, type PatientSummaryView } from '../../presenters/patient.presenter.js';
import { searchAuditEvents, type AuditRow } from '../../queries/audit.queries.js';
import {
  breakGlassSecrets,
  findBreakGlass,
  findByNameAndDob,
  findPatientFor,
  findPatients,
  findPatientsByIndex,
  insertBreakGlass,
  insertPatient,
  listBreakGlass,
  markBreakGlassReviewed,
  patientSecrets,
  recentPatientIds,
  updatePatient,
  type PatientRow,
} from '../../queries/patients.queries.js';
import { listLocations } from '../../queries/practices.queries.js';
import { listUsers } from '../../queries/users.queries.js';
import type { PatientForm } from '../../validation/patient.schema.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { staffEvent as event, staffCryptoWork as work } from '../staff-work.js';
import { amendmentRequestSecrets } from '../../queries/rights.queries.js';
import type { DemographicAmendmentRow } from '../../queries/patients.queries.js';

/**
 * Patients: search (blind indexes), recent list, create with a duplicate warning, the chart
 * summary, edits, the per-patient access history, and break-glass. SECURITY: every read of PHI
 * writes its audit event in the same transaction before anything is returned; a patient outside the
 * actor's practice or locations is AccessDenied (the not-found page, audited).
 */

export interface PatientDeps {
  db: Db;
  keyring: Keyring;
}

export const SEARCH_LIMIT = 25;
export const BREAK_GLASS_MINUTES = 60;



async function locationNames(trx: Knex.Transaction): Promise<Map<string, string>> {
  return new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
}

/** SECURITY: the patient as the policy sees it, with the actor's running break-glass grant (AccessDenied if not in the practice). */
export async function loadPatientRecord(trx: Knex.Transaction, actor: StaffActor, id: string, now: Date): Promise<{ row: PatientRow; record: PatientRecord; locationName: string; restrictions: { kind: string; channel: string | null }[]; demographicAmendments: DemographicAmendmentRow[] }> {
  const found = await findPatientFor(trx, id, actor.id, now);
  if (!found) throw new AccessDenied({ resource: { type: 'patient', id } });
  const { row, grantExpiresAt, locationName, restrictions, demographicAmendments } = found;
  return { row, locationName, restrictions, demographicAmendments, record: { practiceId: row.practice_id, id: row.id, locationId: row.location_id, ...(grantExpiresAt ? { breakGlassUntil: grantExpiresAt } : {}) } };
}

/** Summaries of the rows the actor may see, each disclosure audited (one `search`/`list` event per patient). */
async function disclose(trx: Knex.Transaction, pc: PracticeCrypto, actor: StaffActor, rows: PatientRow[], action: 'search' | 'list', meta: Meta): Promise<PatientSummaryView[]> {
  const locations = await locationNames(trx);
  const visible = rows.filter((r) => authorize(actor, 'patient.show', { practiceId: r.practice_id, id: r.id, locationId: r.location_id }, meta.now));
  const out: PatientSummaryView[] = [];
  for (const row of visible) {
    await audit.record(trx, event(actor, meta, { action, resource: { type: 'patient', id: row.id }, patientId: row.id, outcome: 'allowed' }));
    out.push(presentSummary(row, await patientSecrets.open(pc, row), locations, meta.now));
  }
  // By last name, then first name ("Maplestone, Avery" before "Maplestone-Applewood, Jo"), then birth date.
  const parts = (name: string) => { const i = name.indexOf(', '); return i < 0 ? [name, ''] : [name.slice(0, i), name.slice(i + 2)]; };
  return out.sort((a, b) => {
    const [fa, ga] = parts(a.name);
    const [fb, gb] = parts(b.name);
    return fa!.localeCompare(fb!) || ga!.localeCompare(gb!) || a.dateOfBirth.localeCompare(b.dateOfBirth);
  });
}

/**
 * What a single search box holds: an email, a date of birth, the last four digits of a phone, a
 * phone number, or a name — a last name or its first letters ("smi"), or a first and last name
 * ("John Smith", "Smith, John", "jo smi").
 */
export type SearchPlan =
  | { kind: 'exact'; index: 'email_bidx' | 'date_of_birth_bidx' | 'phone_bidx' | 'phone_last4_bidx'; column: 'email' | 'date_of_birth' | 'phone'; lookup: string; input: string }
  | { kind: 'name'; readings: { given?: string; family: string }[] };

export function searchPlan(q: string, format: DateFormat = 'MM/DD/YYYY'): SearchPlan {
  const input = q.trim();
  if (input.includes('@')) return { kind: 'exact', index: 'email_bidx', column: 'email', lookup: 'email', input };
  const date = readDate(input, format);
  if (date.ok) return { kind: 'exact', index: 'date_of_birth_bidx', column: 'date_of_birth', lookup: 'date_of_birth', input: date.iso };
  if (/^\d{4}$/.test(input.replace(/\s/g, ''))) return { kind: 'exact', index: 'phone_last4_bidx', column: 'phone', lookup: 'phone_last4_bidx', input: input.replace(/\s/g, '') };
  if (/^[\d\s()+.-]+$/.test(input)) return { kind: 'exact', index: 'phone_bidx', column: 'phone', lookup: 'phone', input };
  const readings: { given?: string; family: string }[] = [];
  const comma = input.indexOf(',');
  if (comma >= 0) {
    // "Smith, John": the last name first.
    readings.push({ family: input.slice(0, comma), given: input.slice(comma + 1) });
  } else {
    const words = input.split(/\s+/).filter(Boolean);
    // CASE: "Van Der Berg" is one last name as well as given "Van" + last "Der Berg".
    readings.push({ family: input });
    // "John Smith", and the way a chart lists it without the comma: "Smith John".
    if (words.length > 1) readings.push({ given: words[0]!, family: words.slice(1).join(' ') }, { family: words.slice(0, -1).join(' '), given: words[words.length - 1]! });
  }
  return { kind: 'name', readings: readings.filter((r) => normalizeName(r.family)).map((r) => (r.given && normalizeName(r.given) ? r : { family: r.family })) };
}

/** At most this many patients sharing a last-name prefix are decrypted to filter one search. */
export const PREFIX_CANDIDATES = 1000;

export interface SearchResult {
  patients: PatientSummaryView[];
  /** Matches outside the actor's locations, offered for break-glass only: an id and a location, nothing else. */
  restricted: { id: string; location: string }[];
  /** More patients matched than are shown: type more of the name. */
  truncated: boolean;
}

/**
 * The rows a name search matches. Three or more letters of a last name go through the prefix index
 * (its first three letters), shorter ones through the exact index; the candidates' names are then
 * decrypted and compared: the last name starts with what was typed, and so does the first name if
 * one was typed. SECURITY: decrypting candidates discloses nothing; only the rows shown are audited.
 */
async function nameMatches(trx: Knex.Transaction, pc: PracticeCrypto, readings: { given?: string; family: string }[]): Promise<{ rows: PatientRow[]; capped: boolean }> {
  const byId = new Map<string, PatientRow>();
  let capped = false;
  for (const r of readings) {
    const family = normalizeName(r.family)!;
    const index = family.length >= NAME_PREFIX_LENGTH ? 'family_name_prefix_bidx' : 'family_name_bidx';
    const found = await findPatientsByIndex(trx, index, await patientSecrets.lookup(pc, index === 'family_name_bidx' ? 'family_name' : index, r.family), PREFIX_CANDIDATES);
    capped ||= found.length >= PREFIX_CANDIDATES;
    for (const row of found) byId.set(row.id, row);
  }
  const rows: PatientRow[] = [];
  for (const row of byId.values()) {
    const names = await patientSecrets.open(pc, { id: row.id, given_name: row.given_name, family_name: row.family_name });
    const family = normalizeName(names.family_name ?? '') ?? '';
    const given = normalizeName(names.given_name ?? '') ?? '';
    if (readings.some((r) => family.startsWith(normalizeName(r.family)!) && (!r.given || given.startsWith(normalizeName(r.given)!)))) rows.push(row);
  }
  return { rows, capped };
}

export async function searchPatients(d: PatientDeps, actor: StaffActor, q: string, meta: Meta, format?: DateFormat): Promise<SearchResult> {
  ensure(authorize(actor, 'patient.search'), { permission: 'patients.read' });
  return work(d, actor, async (trx, pc) => {
    const plan = searchPlan(q, format);
    let matched: PatientRow[];
    let capped = false;
    if (plan.kind === 'exact') {
      matched = await findPatientsByIndex(trx, plan.index, await patientSecrets.lookup(pc, plan.lookup, plan.input), SEARCH_LIMIT + 1);
    } else {
      ({ rows: matched, capped } = await nameMatches(trx, pc, plan.readings));
    }
    const truncated = capped || matched.length > SEARCH_LIMIT;
    const rows = matched.slice(0, SEARCH_LIMIT);
    if (rows.length === 0) await audit.record(trx, event(actor, meta, { action: 'search', resource: { type: 'patient' }, outcome: 'allowed', details: { count: 0 } }));
    const patients = await disclose(trx, pc, actor, rows, 'search', meta);
    const shown = new Set(patients.map((p) => p.id));
    const locations = await locationNames(trx);
    const restricted: SearchResult['restricted'] = [];
    for (const row of rows.filter((r) => !shown.has(r.id))) {
      if (!authorize(actor, 'patient.breakGlass', { practiceId: row.practice_id, id: row.id, locationId: row.location_id })) continue;
      await audit.record(trx, event(actor, meta, { action: 'search', resource: { type: 'patient', id: row.id }, patientId: row.id, outcome: 'denied' }));
      restricted.push({ id: row.id, location: locations.get(row.location_id) ?? '' });
    }
    return { patients, restricted, truncated };
  });
}

export async function recentPatients(d: PatientDeps, actor: StaffActor, meta: Meta): Promise<PatientSummaryView[]> {
  ensure(authorize(actor, 'patient.search'), { permission: 'patients.read' });
  return work(d, actor, async (trx, pc) => {
    const ids = await recentPatientIds(trx, actor.id, 10);
    return ids.length ? disclose(trx, pc, actor, (await findPatients(trx, ids)).filter((r) => !r.deletion_requested_at), 'list', meta) : [];
  });
}

export interface LocationChoice {
  id: string;
  name: string;
}

/** Locations the actor may register patients at. */
export async function patientLocations(d: PatientDeps, actor: StaffActor): Promise<LocationChoice[]> {
  return work(d, actor, async (trx) => (await listLocations(trx)).filter((l) => authorize(actor, 'patient.create', { locationId: l.id })).map((l) => ({ id: l.id, name: l.name })));
}

function sealable(form: PatientForm) {
  return {
    given_name: form.givenName,
    family_name: form.familyName,
    date_of_birth: form.dateOfBirth,
    sex: form.sex,
    phone: form.phone,
    email: form.email,
    preferred_contact: form.preferredContact,
    address: form.addressLine1 || form.city || form.postalCode ? { line1: form.addressLine1, line2: form.addressLine2, city: form.city, region: form.region, postalCode: form.postalCode } : null,
    insurance: form.insuranceCarrier || form.insuranceMemberId ? { carrier: form.insuranceCarrier, memberId: form.insuranceMemberId } : null,
    emergency_contact: form.emergencyName || form.emergencyPhone ? { name: form.emergencyName, phone: form.emergencyPhone, relationship: form.emergencyRelationship } : null,
  };
}

/** The consent columns for the form's answer: a new or changed consent is stamped now; an unchanged one keeps its time. */
function smsConsent(form: PatientForm, current: Pick<PatientRow, 'sms_consent_at' | 'sms_consent_source'> | undefined, now: Date) {
  if (form.smsConsent === 'none') return { sms_consent_at: null, sms_consent_source: null };
  if (current?.sms_consent_source === form.smsConsent) return { sms_consent_at: current.sms_consent_at, sms_consent_source: current.sms_consent_source };
  return { sms_consent_at: now, sms_consent_source: form.smsConsent };
}

export type CreateResult = { ok: true; id: string } | { ok: false; error: string; refused?: boolean } | { ok: false; duplicates: PatientSummaryView[] };

/**
 * Registers a patient. Same last name and date of birth as an existing patient → the possible
 * duplicates are returned (and their disclosure audited) unless the form confirms.
 */
export async function createPatient(d: PatientDeps, actor: StaffActor, form: PatientForm, meta: Meta): Promise<CreateResult> {
  return work(d, actor, async (trx, pc) => {
    if (!authorize(actor, 'patient.create', { locationId: form.locationId })) return { ok: false, error: 'Choose one of your locations.', refused: true };
    if (!(await locationNames(trx)).has(form.locationId)) return { ok: false, error: 'Choose a location from the list.' };
    if (!form.confirmDuplicate) {
      const same = await findByNameAndDob(trx, await patientSecrets.lookup(pc, 'family_name', form.familyName), await patientSecrets.lookup(pc, 'date_of_birth', form.dateOfBirth));
      if (same.length) {
        const duplicates = await disclose(trx, pc, actor, same, 'search', meta);
        if (duplicates.length) return { ok: false, duplicates };
      }
    }
    const id = randomUUID();
    await insertPatient(trx, { id, practice_id: actor.practiceId, location_id: form.locationId, status: 'active', created_by: actor.id, ...smsConsent(form, undefined, meta.now), ...(await patientSecrets.seal(pc, id, sealable(form))) });
    await audit.record(trx, event(actor, meta, { action: 'create', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed', details: { location_id: form.locationId } }));
    return { ok: true, id };
  });
}

/** The chart summary. SECURITY: the view event is written before the data leaves the transaction. */
export async function showPatient(d: PatientDeps, actor: StaffActor, id: string, meta: Meta): Promise<PatientChartView> {
  return work(d, actor, async (trx, pc) => {
    const { row, record, locationName, restrictions, demographicAmendments } = await loadPatientRecord(trx, actor, id, meta.now);
    ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id }, patientId: id });
    const breakGlass = !coversLocation(actor, record.locationId);
    await audit.record(trx, event(actor, meta, { action: 'view', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed', ...(breakGlass ? { reason: 'emergency' as const } : {}) }));
    const amendments = [];
    for (const a of demographicAmendments) {
      const s = await amendmentRequestSecrets.open(pc, a as never);
      amendments.push({ decision: a.decision, requestedAt: a.requested_at, decidedAt: a.decided_at, requestedChange: s.requested_change ?? '', response: s.response, disagreement: s.disagreement, disagreementAt: a.disagreement_at });
    }
    return { ...presentChart(actor, row, await patientSecrets.open(pc, row), new Map([[row.location_id, locationName]]), record, meta.now), restrictions, amendments };
  });
}

/** The edit form's values; audited as a view. */
export async function patientForEdit(d: PatientDeps, actor: StaffActor, id: string, meta: Meta): Promise<PatientFormValues> {
  return work(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, id, meta.now);
    ensure(authorize(actor, 'patient.update', record, meta.now), { resource: { type: 'patient', id }, patientId: id });
    await audit.record(trx, event(actor, meta, { action: 'view', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed' }));
    return presentForm(row, await patientSecrets.open(pc, row), true);
  });
}

export async function changePatient(d: PatientDeps, actor: StaffActor, id: string, form: PatientForm, meta: Meta): Promise<FormResult<null>> {
  return work(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, id, meta.now);
    ensure(authorize(actor, 'patient.update', record, meta.now), { resource: { type: 'patient', id }, patientId: id });
    if (row.status === 'merged') return { ok: false, error: 'This record was merged into another one and can no longer be changed.' };
    if (form.locationId !== row.location_id) {
      if (!(await locationNames(trx)).has(form.locationId)) return { ok: false, error: 'Choose a location from the list.' };
      if (!authorize(actor, 'patient.relocate', record, form.locationId)) return { ok: false, error: 'You can only move a patient to one of your own locations.', refused: true };
    }
    await updatePatient(trx, id, { location_id: form.locationId, status: form.status, ...smsConsent(form, row, meta.now), ...(await patientSecrets.seal(pc, id, sealable(form))) });
    await audit.record(trx, event(actor, meta, { action: 'update', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed', ...(form.locationId !== row.location_id ? { details: { location_id: form.locationId } } : {}) }));
    return { ok: true, value: null };
  });
}

export interface AccessHistory {
  patient: PatientSummaryView;
  entries: (AuditRow & { actorName: string })[];
}

/** "Who accessed this record": every audit event naming the patient, newest first (last 500). */
export async function patientAccessHistory(d: PatientDeps, actor: StaffActor, id: string, meta: Meta): Promise<AccessHistory> {
  return work(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, id, meta.now);
    ensure(authorize(actor, 'patient.accessHistory', record), { resource: { type: 'patient', id }, patientId: id });
    await audit.record(trx, event(actor, meta, { action: 'view', resource: { type: 'audit_log' }, patientId: id, outcome: 'allowed' }));
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const rows = await searchAuditEvents(trx, { patientId: id }, { limit: 500 });
    return {
      patient: presentSummary(row, await patientSecrets.open(pc, row), await locationNames(trx)),
      entries: rows.map((r) => ({ ...r, actorName: r.actor_type === 'user' && r.actor_id ? (names.get(r.actor_id) ?? 'unknown user') : r.actor_type })),
    };
  });
}

/** Whether the actor may ask for break-glass on this patient (they lack normal access). */
export async function breakGlassAllowed(d: PatientDeps, actor: StaffActor, id: string, meta: Meta): Promise<boolean> {
  return work(d, actor, async (trx) => {
    const { record } = await loadPatientRecord(trx, actor, id, meta.now);
    return authorize(actor, 'patient.breakGlass', record);
  });
}

/**
 * Break-glass: after step-up (route) and a written reason, the actor may open this one patient for
 * BREAK_GLASS_MINUTES. Audited with the reason code (the written reason is stored encrypted and
 * referenced by id), and an alert is raised at once (alerts page and banner; the security contact is emailed).
 */
export async function breakGlass(d: PatientDeps, actor: StaffActor, id: string, input: { reasonCode: 'emergency' | 'continuity_of_care' | 'patient_request' | 'other'; justification: string }, meta: Meta): Promise<{ grantId: string; expiresAt: Date }> {
  return work(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, id, meta.now);
    ensure(authorize(actor, 'patient.breakGlass', record), { resource: { type: 'patient', id }, patientId: id });
    const grantId = randomUUID();
    const expiresAt = new Date(meta.now.getTime() + BREAK_GLASS_MINUTES * 60_000);
    await insertBreakGlass(trx, {
      id: grantId,
      practice_id: actor.practiceId,
      user_id: actor.id,
      patient_id: id,
      reason_code: input.reasonCode,
      granted_at: meta.now,
      expires_at: expiresAt,
      ...(await breakGlassSecrets.seal(pc, grantId, { justification: input.justification })),
    });
    await audit.record(trx, event(actor, meta, { action: 'break_glass', resource: { type: 'break_glass_grant', id: grantId }, patientId: id, outcome: 'allowed', reason: input.reasonCode, details: { reference_id: grantId, minutes: BREAK_GLASS_MINUTES, step_up: true } }));
    // SECURITY: the practice hears of it at once: the alerts page, the banner and an email to the security contact.
    await raiseAlert(trx, { practiceId: actor.practiceId, kind: 'break_glass', severity: 'warning', details: { target_type: 'break_glass_grant', target_id: grantId } });
    return { grantId, expiresAt };
  });
}

export interface BreakGlassReviewItem {
  id: string;
  userName: string;
  patient: PatientSummaryView;
  reasonCode: string;
  justification: string;
  grantedAt: Date;
  expiresAt: Date;
  reviewedBy?: string;
  reviewedAt?: Date;
}

/** Break-glass uses for review, unreviewed first (owners and compliance managers). Audited. */
export async function breakGlassReview(d: PatientDeps, actor: StaffActor, meta: Meta): Promise<BreakGlassReviewItem[]> {
  ensure(authorize(actor, 'patient.reviewBreakGlass'), { permission: 'compliance.manage' });
  return work(d, actor, async (trx, pc) => {
    const grants = await listBreakGlass(trx, 200);
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const locations = await locationNames(trx);
    const patients = new Map((await findPatients(trx, [...new Set(grants.map((g) => g.patient_id))])).map((p) => [p.id, p]));
    const items: BreakGlassReviewItem[] = [];
    for (const g of grants) {
      const row = patients.get(g.patient_id)!;
      await audit.record(trx, event(actor, meta, { action: 'list', resource: { type: 'break_glass_grant', id: g.id }, patientId: g.patient_id, outcome: 'allowed' }));
      items.push({
        id: g.id,
        userName: names.get(g.user_id) ?? 'unknown user',
        patient: presentSummary(row, await patientSecrets.open(pc, row), locations),
        reasonCode: g.reason_code,
        justification: (await breakGlassSecrets.open(pc, g)).justification ?? '',
        grantedAt: g.granted_at,
        expiresAt: g.expires_at,
        ...(g.reviewed_by ? { reviewedBy: names.get(g.reviewed_by) ?? 'unknown user' } : {}),
        ...(g.reviewed_at ? { reviewedAt: g.reviewed_at } : {}),
      });
    }
    return items;
  });
}

export async function markReviewed(d: PatientDeps, actor: StaffActor, grantId: string, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'patient.reviewBreakGlass'), { permission: 'compliance.manage' });
  await work(d, actor, async (trx) => {
    const grant = await findBreakGlass(trx, grantId);
    if (!grant) throw new AccessDenied({ resource: { type: 'break_glass_grant', id: grantId } });
    await markBreakGlassReviewed(trx, grantId, actor.id, meta.now);
    await audit.record(trx, event(actor, meta, { action: 'update', resource: { type: 'break_glass_grant', id: grantId }, patientId: grant.patient_id, outcome: 'allowed' }));
  });
}
