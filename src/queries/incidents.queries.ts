import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';
import type { NoticeKind } from '../compliance/breach-deadlines.js';

/** The incident's narrative: what happened, who reported it, the four-factor assessment (§164.402). */
export const incidentSecrets = encryptedColumns('incidents', { summary: { type: 'text' }, reported_by: { type: 'text' }, assessment: { type: 'json' } });
export const incidentEventSecrets = encryptedColumns('incident_events', { body: { type: 'text' } });
export const incidentTaskSecrets = encryptedColumns('incident_tasks', { evidence: { type: 'text' } });

export const INCIDENT_KINDS = ['unauthorized_access', 'lost_device', 'misdirected_message', 'ransomware', 'hacking', 'improper_disposal', 'other'] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];
export const INCIDENT_SYSTEMS = ['records', 'images', 'email', 'text_messages', 'backups', 'paper', 'device', 'other'] as const;
export type IncidentSystem = (typeof INCIDENT_SYSTEMS)[number];

export interface IncidentRow {
  id: string;
  practice_id: string;
  kind: IncidentKind;
  discovered_at: Date;
  occurred_at: Date | null;
  vendor_id: string | null;
  systems: IncidentSystem[];
  summary: Buffer;
  reported_by: Buffer | null;
  opened_by: string;
  status: 'open' | 'closed';
  assessed_at: Date | null;
  assessed_by: string | null;
  assessment: Buffer | null;
  outcome: 'not_breach' | 'breach' | null;
  closed_at: Date | null;
  created_at: Date;
}

export async function insertIncident(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('incidents').insert(row);
}

export function findIncident(trx: Knex.Transaction, id: string): Promise<IncidentRow | undefined> {
  return trx('incidents').where({ id }).first<IncidentRow | undefined>();
}

export function listIncidents(trx: Knex.Transaction, limit: number): Promise<IncidentRow[]> {
  return trx('incidents').orderBy('discovered_at', 'desc').limit(limit).select<IncidentRow[]>('*');
}

export async function updateIncident(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<void> {
  await trx('incidents').where({ id }).update(changes);
}

export function incidentPatientIds(trx: Knex.Transaction, incidentId: string): Promise<string[]> {
  return trx('incident_patients').where({ incident_id: incidentId }).orderBy('added_at').pluck('patient_id');
}

/** Adds patients to the incident; returns how many were new. */
export async function addIncidentPatients(trx: Knex.Transaction, practiceId: string, incidentId: string, patientIds: readonly string[], source: 'manual' | 'audit_log', now: Date): Promise<number> {
  if (!patientIds.length) return 0;
  const rows = await trx('incident_patients')
    .insert(patientIds.map((patient_id) => ({ practice_id: practiceId, incident_id: incidentId, patient_id, added_at: now, source })))
    .onConflict(['practice_id', 'incident_id', 'patient_id'])
    .ignore()
    .returning('patient_id');
  return rows.length;
}

export async function removeIncidentPatient(trx: Knex.Transaction, incidentId: string, patientId: string): Promise<number> {
  return trx('incident_patients').where({ incident_id: incidentId, patient_id: patientId }).delete();
}

/** Incidents per vendor (the registry shows them). */
export function incidentCountsByVendor(trx: Knex.Transaction): Promise<{ vendor_id: string; n: number }[]> {
  return trx('incidents').whereNotNull('vendor_id').groupBy('vendor_id').select<{ vendor_id: string; n: number }[]>('vendor_id', trx.raw('count(*)::int AS n'));
}

/**
 * Every patient a staff account touched between two times, from the audit log: the distinct
 * patient ids of its events (the audit log is the record of who opened what).
 */
export function patientsTouchedBy(trx: Knex.Transaction, userId: string, from: Date, to: Date): Promise<string[]> {
  return trx('audit_events').where({ actor_type: 'user', actor_id: userId }).whereNotNull('patient_id').where('occurred_at', '>=', from).where('occurred_at', '<', to).distinct('patient_id').orderBy('patient_id').pluck('patient_id');
}

export interface IncidentEventRow {
  id: string;
  at: Date;
  kind: 'action' | 'containment' | 'notice';
  body: Buffer;
  recorded_by: string;
}

export async function insertIncidentEvent(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('incident_events').insert(row);
}

export function incidentEvents(trx: Knex.Transaction, incidentId: string): Promise<IncidentEventRow[]> {
  return trx('incident_events').where({ incident_id: incidentId }).orderBy('at').select<IncidentEventRow[]>('id', 'at', 'kind', 'body', 'recorded_by');
}

export interface IncidentTaskRow {
  id: string;
  incident_id: string;
  kind: NoticeKind;
  due_at: Date;
  done_at: Date | null;
  done_by: string | null;
  evidence: Buffer | null;
  alerted_at: Date | null;
}

export function incidentTasks(trx: Knex.Transaction, incidentId: string): Promise<IncidentTaskRow[]> {
  return trx('incident_tasks').where({ incident_id: incidentId }).orderBy('due_at').select<IncidentTaskRow[]>('*');
}

export function findIncidentTask(trx: Knex.Transaction, id: string): Promise<IncidentTaskRow | undefined> {
  return trx('incident_tasks').where({ id }).first<IncidentTaskRow | undefined>();
}

/** Sets the open tasks to exactly `wanted` (due dates updated; open ones no longer required removed); done tasks stay as they are. */
export async function syncIncidentTasks(trx: Knex.Transaction, practiceId: string, incidentId: string, wanted: { id: string; kind: NoticeKind; dueAt: Date }[]): Promise<void> {
  const current = await incidentTasks(trx, incidentId);
  for (const t of current) if (!t.done_at && !wanted.some((w) => w.kind === t.kind)) await trx('incident_tasks').where({ id: t.id }).delete();
  for (const w of wanted) {
    const existing = current.find((t) => t.kind === w.kind);
    if (!existing) await trx('incident_tasks').insert({ id: w.id, practice_id: practiceId, incident_id: incidentId, kind: w.kind, due_at: w.dueAt });
    else if (!existing.done_at && existing.due_at.getTime() !== w.dueAt.getTime()) await trx('incident_tasks').where({ id: existing.id }).update({ due_at: w.dueAt, alerted_at: null });
  }
}

export async function completeIncidentTask(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<number> {
  return trx('incident_tasks').where({ id }).whereNull('done_at').update(changes);
}

/** Open tasks due before `until` not yet alerted: marks them alerted and returns how many. */
export async function markTasksAlerted(trx: Knex.Transaction, until: Date, now: Date): Promise<number> {
  return trx('incident_tasks').whereNull('done_at').whereNull('alerted_at').where('due_at', '<', until).update({ alerted_at: now });
}

/** Open notice tasks by due date across the practice's incidents (the register and the home page). */
export function openTasks(trx: Knex.Transaction): Promise<IncidentTaskRow[]> {
  return trx('incident_tasks').whereNull('done_at').orderBy('due_at').select<IncidentTaskRow[]>('*');
}

/** The breaches of a calendar year (the HHS annual log). */
export function breachesOfYear(trx: Knex.Transaction, year: number): Promise<IncidentRow[]> {
  return trx('incidents').where({ outcome: 'breach' }).where('discovered_at', '>=', new Date(Date.UTC(year, 0, 1))).where('discovered_at', '<', new Date(Date.UTC(year + 1, 0, 1))).orderBy('discovered_at').select<IncidentRow[]>('*');
}
