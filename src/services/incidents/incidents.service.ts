import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import { NOTICE_LABELS, requiredNotices, type NoticeDue, type NoticeKind } from '../../compliance/breach-deadlines.js';
import type { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import {
  addIncidentPatients,
  breachesOfYear,
  completeIncidentTask,
  findIncident,
  findIncidentTask,
  incidentEvents,
  incidentEventSecrets,
  incidentPatientIds,
  incidentSecrets,
  incidentTasks,
  incidentTaskSecrets,
  insertIncident,
  insertIncidentEvent,
  listIncidents,
  markTasksAlerted,
  openTasks,
  patientsTouchedBy,
  removeIncidentPatient,
  syncIncidentTasks,
  updateIncident,
  type IncidentKind,
  type IncidentRow,
  type IncidentSystem,
} from '../../queries/incidents.queries.js';
import { findPatients, patientSecrets } from '../../queries/patients.queries.js';
import { findPracticeBrand, findPracticeSettings } from '../../queries/practices.queries.js';
import { findVendor, listVendors } from '../../queries/vendors.queries.js';
import { exportStaffNames } from '../../queries/exports.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { staffCryptoWork, staffEvent } from '../staff-work.js';

/**
 * The incident and breach register (docs/INCIDENTS.md): an incident, its timeline, the patients it
 * affected (by id — from the audit log or added by staff), the §164.402 risk assessment, and for a
 * breach the notices the rule requires, each a task with its due date computed from the discovery.
 */

type D = { db: Db; keyring: Keyring };
const DAY = 86_400_000;
/** Notices due within this many days alert (once per task), as do overdue ones. */
export const NOTICE_WARNING_DAYS = 7;

export interface Assessment {
  nature: string;
  recipient: string;
  acquired: string;
  mitigation: string;
  /** What the letter tells patients they can do. */
  advice: string;
}

export interface TaskView {
  id: string;
  kind: NoticeKind;
  label: string;
  rule: string;
  dueAt: Date;
  doneAt: Date | null;
  evidence: string | null;
  overdue: boolean;
  soon: boolean;
}

export interface IncidentView {
  id: string;
  kind: IncidentKind;
  discoveredAt: Date;
  occurredAt: Date | null;
  vendor: { id: string; name: string } | null;
  systems: IncidentSystem[];
  summary: string;
  reportedBy: string | null;
  status: 'open' | 'closed';
  outcome: 'not_breach' | 'breach' | null;
  assessedAt: Date | null;
  assessment: Assessment | null;
  patients: number;
  byState: { state: string; count: number }[];
  tasks: TaskView[];
  timeline: { at: Date; kind: string; body: string; by: string }[];
  /** The practice's accounts (the audit-log query names one). */
  staff: { id: string; name: string }[];
}

const guard = (actor: StaffActor) => ensure(authorize(actor, 'practice.manageIncidents'), { permission: 'incidents.manage', resource: { type: 'incident' } });

async function loadIncident(trx: Knex.Transaction, id: string): Promise<IncidentRow> {
  const i = await findIncident(trx, id);
  if (!i) throw new AccessDenied({ resource: { type: 'incident', id } });
  return i;
}

/** Affected patients per state, from their addresses (a purged patient counts as unknown, ''). */
async function patientsByState(trx: Knex.Transaction, pc: PracticeCrypto, incidentId: string): Promise<Map<string, number>> {
  const ids = await incidentPatientIds(trx, incidentId);
  const rows = new Map((await findPatients(trx, ids)).map((p) => [p.id, p]));
  const byState = new Map<string, number>();
  for (const id of ids) {
    const row = rows.get(id);
    // PERF: only the address is decrypted (an incident may name hundreds of patients).
    const address = row ? ((await patientSecrets.open(pc, { id: row.id, address: row.address })).address as { region?: string } | null) : null;
    const state = (address?.region ?? '').trim().toUpperCase().slice(0, 2);
    byState.set(state, (byState.get(state) ?? 0) + 1);
  }
  return byState;
}

/** The notices this incident requires now, written as its open tasks (done ones stay). */
async function syncTasks(trx: Knex.Transaction, pc: PracticeCrypto, i: IncidentRow): Promise<NoticeDue[]> {
  const settings = await findPracticeSettings(trx);
  const wanted = requiredNotices({ discoveredAt: i.discovered_at, byState: await patientsByState(trx, pc, i.id), outcome: i.outcome, businessAssociate: i.vendor_id !== null, baNoticeHours: settings?.ba_notice_hours ?? null });
  await syncIncidentTasks(trx, i.practice_id, i.id, wanted.map((w) => ({ id: randomUUID(), kind: w.kind, dueAt: w.dueAt })));
  return wanted;
}

export interface IncidentInput {
  kind: IncidentKind;
  discoveredAt: Date;
  occurredAt: Date | null;
  vendorId: string | null;
  systems: IncidentSystem[];
  summary: string;
  reportedBy: string;
}

export async function openIncident(d: D, actor: StaffActor, input: IncidentInput, meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  if (input.discoveredAt.getTime() > meta.now.getTime() + DAY) return { ok: false, error: 'The day it was discovered cannot be in the future.', field: 'discoveredOn' };
  if (input.occurredAt && input.occurredAt > input.discoveredAt) return { ok: false, error: 'It cannot have happened after it was discovered.', field: 'occurredOn' };
  return staffCryptoWork(d, actor, async (trx, pc) => {
    if (input.vendorId && !(await findVendor(trx, input.vendorId))) return { ok: false, error: 'Choose the vendor from the practice’s registry.', field: 'vendorId' };
    const id = randomUUID();
    await insertIncident(trx, {
      id,
      practice_id: actor.practiceId,
      kind: input.kind,
      discovered_at: input.discoveredAt,
      occurred_at: input.occurredAt,
      vendor_id: input.vendorId,
      systems: input.systems,
      opened_by: actor.id,
      ...(await incidentSecrets.seal(pc, id, { summary: input.summary, reported_by: input.reportedBy || null, assessment: null })),
    });
    await syncTasks(trx, pc, await loadIncident(trx, id));
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'incident', id }, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

function taskViews(tasks: Awaited<ReturnType<typeof incidentTasks>>, rules: Map<NoticeKind, string>, evidence: Map<string, string | null>, now: Date): TaskView[] {
  return tasks.map((t) => ({
    id: t.id,
    kind: t.kind,
    label: NOTICE_LABELS[t.kind],
    rule: rules.get(t.kind) ?? '',
    dueAt: t.due_at,
    doneAt: t.done_at,
    evidence: evidence.get(t.id) ?? null,
    overdue: !t.done_at && t.due_at < now,
    soon: !t.done_at && t.due_at >= now && t.due_at.getTime() < now.getTime() + NOTICE_WARNING_DAYS * DAY,
  }));
}

export async function incidentPage(d: D, actor: StaffActor, id: string, meta: Meta): Promise<IncidentView> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    const s = await incidentSecrets.open(pc, i as never);
    const byState = await patientsByState(trx, pc, id);
    const settings = await findPracticeSettings(trx);
    const rules = new Map(requiredNotices({ discoveredAt: i.discovered_at, byState, outcome: i.outcome, businessAssociate: i.vendor_id !== null, baNoticeHours: settings?.ba_notice_hours ?? null }).map((n) => [n.kind, n.rule]));
    const tasks = await incidentTasks(trx, id);
    const evidence = new Map<string, string | null>();
    for (const t of tasks) evidence.set(t.id, (await incidentTaskSecrets.open(pc, t as never)).evidence);
    const staff = new Map((await exportStaffNames(trx)).map((u) => [u.id, u.display_name]));
    const timeline = [];
    for (const e of await incidentEvents(trx, id)) timeline.push({ at: e.at, kind: e.kind, body: (await incidentEventSecrets.open(pc, e as never)).body ?? '', by: staff.get(e.recorded_by) ?? 'Former staff member' });
    const vendor = i.vendor_id ? await findVendor(trx, i.vendor_id) : undefined;
    const patients = [...byState.values()].reduce((a, b) => a + b, 0);
    // SECURITY: the page decrypts the affected patients' addresses to count them by state (no name is shown): one audited read with the count.
    await audit.record(trx, staffEvent(actor, meta, { action: 'view', resource: { type: 'incident', id }, outcome: 'allowed', details: { count: patients } }));
    return {
      id,
      kind: i.kind,
      discoveredAt: i.discovered_at,
      occurredAt: i.occurred_at,
      vendor: vendor ? { id: vendor.id, name: vendor.name } : null,
      systems: i.systems,
      summary: s.summary ?? '',
      reportedBy: s.reported_by,
      status: i.status,
      outcome: i.outcome,
      assessedAt: i.assessed_at,
      assessment: (s.assessment as Assessment | null) ?? null,
      patients,
      byState: [...byState.entries()].map(([state, count]) => ({ state: state || 'unknown', count })).sort((a, b) => b.count - a.count),
      tasks: taskViews(tasks, rules, evidence, meta.now),
      timeline,
      staff: [...staff.entries()].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name)),
    };
  });
}

export interface RegisterLine {
  id: string;
  kind: IncidentKind;
  discoveredAt: Date;
  summary: string;
  status: 'open' | 'closed';
  outcome: 'not_breach' | 'breach' | null;
  nextTask: { label: string; dueAt: Date; overdue: boolean } | null;
}

export async function incidentRegister(d: D, actor: StaffActor, now: Date): Promise<{ incidents: RegisterLine[]; vendors: { id: string; name: string }[] }> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const tasks = await openTasks(trx);
    const out: RegisterLine[] = [];
    for (const i of await listIncidents(trx, 200)) {
      const next = tasks.find((t) => t.incident_id === i.id);
      out.push({ id: i.id, kind: i.kind, discoveredAt: i.discovered_at, summary: (await incidentSecrets.open(pc, i as never)).summary ?? '', status: i.status, outcome: i.outcome, nextTask: next ? { label: NOTICE_LABELS[next.kind], dueAt: next.due_at, overdue: next.due_at < now } : null });
    }
    return { incidents: out, vendors: (await listVendors(trx)).map((v) => ({ id: v.id, name: v.name })) };
  });
}

/**
 * Adds to the incident every patient a staff account touched between two times, exactly as the
 * audit log records it. Producing the list is audited (a search of the audit log, with the count).
 */
export async function addPatientsFromAuditLog(d: D, actor: StaffActor, id: string, q: { userId: string; from: Date; to: Date }, meta: Meta): Promise<FormResult<{ found: number; added: number }>> {
  guard(actor);
  if (q.to <= q.from) return { ok: false, error: 'The end must be after the start.', field: 'toDay' };
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    const ids = await patientsTouchedBy(trx, q.userId, q.from, q.to);
    const added = await addIncidentPatients(trx, actor.practiceId, id, ids, 'audit_log', meta.now);
    await audit.record(trx, staffEvent(actor, meta, { action: 'search', resource: { type: 'audit_log' }, outcome: 'allowed', details: { count: ids.length, target_type: 'incident', target_id: id } }));
    await syncTasks(trx, pc, i);
    return { ok: true, value: { found: ids.length, added } };
  });
}

export interface AffectedPatient {
  id: string;
  name: string;
  dateOfBirth: string;
  state: string;
}

/** The affected patients by name (the incident's patients page). SECURITY: each patient named is an audited read. */
export async function incidentPatients(d: D, actor: StaffActor, id: string, meta: Meta): Promise<{ patients: AffectedPatient[]; unreachable: number; closed: boolean }> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    const ids = await incidentPatientIds(trx, id);
    const rows = await findPatients(trx, ids);
    const out: AffectedPatient[] = [];
    for (const p of rows) {
      const v = await patientSecrets.open(pc, { id: p.id, given_name: p.given_name, family_name: p.family_name, date_of_birth: p.date_of_birth, address: p.address });
      out.push({ id: p.id, name: `${v.family_name ?? ''}, ${v.given_name ?? ''}`, dateOfBirth: v.date_of_birth ?? '', state: ((v.address as { region?: string } | null)?.region ?? '').toUpperCase().slice(0, 2) });
      await audit.record(trx, staffEvent(actor, meta, { action: 'list', resource: { type: 'incident', id }, patientId: p.id, outcome: 'allowed' }));
    }
    return { patients: out.sort((a, b) => a.name.localeCompare(b.name)), unreachable: ids.length - rows.length, closed: i.status === 'closed' };
  });
}

/** Adds one patient (found by search) to the incident, or removes one added by mistake; the notices follow. */
export async function changeIncidentPatient(d: D, actor: StaffActor, id: string, patientId: string, change: 'add' | 'remove', meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    if (i.status === 'closed') return { ok: false, error: 'This incident is closed.' };
    if (change === 'add') {
      if ((await findPatients(trx, [patientId])).length === 0) throw new AccessDenied({ resource: { type: 'patient', id: patientId } });
      await addIncidentPatients(trx, actor.practiceId, id, [patientId], 'manual', meta.now);
    } else if ((await removeIncidentPatient(trx, id, patientId)) === 0) return { ok: false, error: 'That patient is not on this incident.' };
    await syncTasks(trx, pc, i);
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'incident', id }, patientId, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/** The §164.402 assessment: the four factors and the outcome; a breach gets its notices. */
export async function assessIncident(d: D, actor: StaffActor, id: string, input: Assessment & { outcome: 'not_breach' | 'breach' }, meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    if (i.status === 'closed') return { ok: false, error: 'This incident is closed.' };
    const { outcome, ...factors } = input;
    await updateIncident(trx, id, { outcome, assessed_at: meta.now, assessed_by: actor.id, ...(await incidentSecrets.seal(pc, id, { assessment: factors })) });
    await syncTasks(trx, pc, await loadIncident(trx, id));
    await audit.record(trx, staffEvent(actor, meta, { action: 'review', resource: { type: 'incident', id }, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/** A line of the timeline: an action taken, a containment step, a notice given. */
export async function addIncidentEvent(d: D, actor: StaffActor, id: string, input: { kind: 'action' | 'containment' | 'notice'; at: Date; body: string }, meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    await loadIncident(trx, id);
    const eventId = randomUUID();
    await insertIncidentEvent(trx, { id: eventId, practice_id: actor.practiceId, incident_id: id, at: input.at, kind: input.kind, recorded_by: actor.id, ...(await incidentEventSecrets.seal(pc, eventId, { body: input.body })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'incident', id }, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/** A notice given: when, and the evidence (how, to whom, the reference). Returns the incident. */
export async function completeNotice(d: D, actor: StaffActor, taskId: string, input: { doneAt: Date; evidence: string }, meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const t = await findIncidentTask(trx, taskId);
    if (!t) throw new AccessDenied({ resource: { type: 'incident', id: taskId } });
    if (t.done_at) return { ok: false, error: 'This notice is already recorded as given.' };
    if (input.doneAt.getTime() > meta.now.getTime() + DAY) return { ok: false, error: 'The day the notice was given cannot be in the future.', field: 'doneOn' };
    await completeIncidentTask(trx, taskId, { done_at: input.doneAt, done_by: actor.id, ...(await incidentTaskSecrets.seal(pc, taskId, { evidence: input.evidence })) });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'incident', id: t.incident_id }, outcome: 'allowed' }));
    return { ok: true, value: t.incident_id };
  });
}

/** That the incident is this practice's (AccessDenied, the not-found page, otherwise). */
export async function checkIncident(d: D, actor: StaffActor, id: string): Promise<void> {
  guard(actor);
  await staffCryptoWork(d, actor, async (trx) => void (await loadIncident(trx, id)));
}

/** The incident a notice task belongs to (AccessDenied if none here). */
export async function noticeIncident(d: D, actor: StaffActor, taskId: string): Promise<string> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx) => {
    const t = await findIncidentTask(trx, taskId);
    if (!t) throw new AccessDenied({ resource: { type: 'incident', id: taskId } });
    return t.incident_id;
  });
}

export async function closeIncident(d: D, actor: StaffActor, id: string, meta: Meta): Promise<FormResult<string>> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx) => {
    const i = await loadIncident(trx, id);
    if (i.status === 'closed') return { ok: false, error: 'This incident is already closed.' };
    if (!i.outcome) return { ok: false, error: 'Record the risk assessment before closing the incident.' };
    if ((await incidentTasks(trx, id)).some((t) => !t.done_at)) return { ok: false, error: 'Record every notice as given before closing the incident.' };
    await updateIncident(trx, id, { status: 'closed', closed_at: meta.now });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'incident', id }, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

export interface Letter {
  patientId: string;
  name: string;
  address: string[];
}

/**
 * The notification letters (§164.404(c)): one per affected patient still on record, with what
 * happened, when, what was involved, what the practice is doing, what the patient can do, and whom
 * to call. SECURITY: each patient named is an audited print.
 */
export async function incidentLetters(d: D, actor: StaffActor, id: string, meta: Meta): Promise<{ practice: { name: string; phone: string | null }; incident: { discoveredAt: Date; occurredAt: Date | null; summary: string; assessment: Assessment | null }; letters: Letter[]; unreachable: number }> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const i = await loadIncident(trx, id);
    const s = await incidentSecrets.open(pc, i as never);
    const ids = await incidentPatientIds(trx, id);
    const rows = await findPatients(trx, ids);
    const letters: Letter[] = [];
    for (const p of rows) {
      const v = await patientSecrets.open(pc, p);
      const a = (v.address ?? {}) as { line1?: string; line2?: string; city?: string; region?: string; postalCode?: string };
      letters.push({ patientId: p.id, name: `${v.given_name ?? ''} ${v.family_name ?? ''}`.trim(), address: [a.line1, a.line2, [a.city, [a.region, a.postalCode].filter(Boolean).join(' ')].filter(Boolean).join(', ')].filter((x): x is string => Boolean(x)) });
      await audit.record(trx, staffEvent(actor, meta, { action: 'print', resource: { type: 'incident', id }, patientId: p.id, outcome: 'allowed', details: { format: 'html' } }));
    }
    const brand = await findPracticeBrand(trx);
    return { practice: { name: brand?.name ?? '', phone: brand?.phone ?? null }, incident: { discoveredAt: i.discovered_at, occurredAt: i.occurred_at, summary: s.summary ?? '', assessment: (s.assessment as Assessment | null) ?? null }, letters, unreachable: ids.length - rows.length };
  });
}

/** The HHS annual log of a year's breaches (§164.408(c)): one row per breach, for the breach portal. */
export async function hhsLog(d: D, actor: StaffActor, year: number, meta: Meta): Promise<string[][]> {
  guard(actor);
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const rows: string[][] = [['Date of breach', 'Date of discovery', 'Approximate number of individuals affected', 'Type of breach', 'Location of breached information', 'Business associate involved', 'Safeguards and actions taken', 'Individuals notified on']];
    for (const i of await breachesOfYear(trx, year)) {
      const s = await incidentSecrets.open(pc, i as never);
      const tasks = await incidentTasks(trx, i.id);
      const individuals = tasks.find((t) => t.kind === 'individuals');
      const vendor = i.vendor_id ? await findVendor(trx, i.vendor_id) : undefined;
      rows.push([
        i.occurred_at ? i.occurred_at.toISOString().slice(0, 10) : '',
        i.discovered_at.toISOString().slice(0, 10),
        String((await incidentPatientIds(trx, i.id)).length),
        i.kind.replace(/_/g, ' '),
        i.systems.join(', ').replace(/_/g, ' '),
        vendor?.name ?? '',
        ((s.assessment as Assessment | null)?.mitigation ?? '').slice(0, 500),
        individuals?.done_at ? individuals.done_at.toISOString().slice(0, 10) : '',
      ]);
    }
    await audit.record(trx, staffEvent(actor, meta, { action: 'export', resource: { type: 'incident' }, outcome: 'allowed', details: { count: rows.length - 1, format: 'csv' } }));
    return rows;
  });
}

/** The daily job, per practice: one alert when notices fall due within a week or are overdue (each task alerts once). */
export async function alertIncidentDeadlines(db: Db, practiceId: string, now: Date): Promise<number> {
  return db.withPractice(practiceId, { kind: 'system', id: 'compliance-deadlines' }, async (trx) => {
    const n = await markTasksAlerted(trx, new Date(now.getTime() + NOTICE_WARNING_DAYS * DAY), now);
    if (n > 0) await raiseAlert(trx, { practiceId, kind: 'incident_deadline', severity: 'critical', details: { count: n } });
    return n;
  });
}
