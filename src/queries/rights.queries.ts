import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** What the patient asked, why a request was extended, how it ended: staff type them (free text, encrypted). */
export const requestSecrets = encryptedColumns('patient_requests', { details: { type: 'text' }, extension_reason: { type: 'text' }, outcome_note: { type: 'text' } });
/** To whom and what was disclosed (encrypted). */
export const disclosureSecrets = encryptedColumns('disclosures', { recipient: { type: 'json' }, description: { type: 'text' } });

export const REQUEST_KINDS = ['access', 'amendment', 'accounting', 'restriction', 'confidential_communication'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];
export const RECEIVED_VIA = ['phone', 'paper', 'in_person', 'email', 'patient_link'] as const;
export const REQUEST_OUTCOMES = ['fulfilled', 'denied', 'withdrawn'] as const;

export type RequestRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  kind: RequestKind;
  received_via: (typeof RECEIVED_VIA)[number];
  received_at: Date;
  due_at: Date;
  details: Buffer | null;
  extended_at: Date | null;
  extension_reason: Buffer | null;
  extension_notice_at: Date | null;
  status: 'open' | 'fulfilled' | 'denied' | 'withdrawn';
  outcome_note: Buffer | null;
  fee_cents: number | null;
  recorded_by: string;
  handled_by: string | null;
  closed_at: Date | null;
  overdue_alerted_at: Date | null;
};

export async function insertRequest(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('patient_requests').insert(row);
}

export function findRequest(trx: Knex.Transaction, id: string): Promise<RequestRow | undefined> {
  return trx('patient_requests').where({ id }).first<RequestRow | undefined>();
}

export async function updateRequest(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<number> {
  return trx('patient_requests').where({ id, status: 'open' }).update(changes);
}

export function listRequests(trx: Knex.Transaction, o: { open: boolean; patientId?: string; limit: number }): Promise<RequestRow[]> {
  const q = trx('patient_requests').orderBy(o.open ? 'due_at' : 'closed_at', o.open ? 'asc' : 'desc').limit(o.limit).select<RequestRow[]>('*');
  if (o.open) q.where({ status: 'open' });
  else q.whereNot({ status: 'open' });
  if (o.patientId) q.where({ patient_id: o.patientId });
  return q;
}

/** Open requests past their due date, and those due within `soonMs`. */
export async function requestsDue(trx: Knex.Transaction, now: Date, soonMs: number): Promise<{ overdue: number; soon: number }> {
  const r = await trx('patient_requests')
    .where({ status: 'open' })
    .select(trx.raw('count(*) FILTER (WHERE due_at < ?)::int AS overdue', [now]), trx.raw('count(*) FILTER (WHERE due_at >= ? AND due_at < ?)::int AS soon', [now, new Date(now.getTime() + soonMs)]))
    .first<{ overdue: number; soon: number }>();
  return { overdue: r?.overdue ?? 0, soon: r?.soon ?? 0 };
}

/** Overdue open requests nobody was alerted about yet; marks them alerted. Returns how many. */
export async function markOverdueAlerted(trx: Knex.Transaction, now: Date): Promise<number> {
  return trx('patient_requests').where({ status: 'open' }).where('due_at', '<', now).whereNull('overdue_alerted_at').update({ overdue_alerted_at: now });
}

export interface DisclosureRow {
  id: string;
  patient_id: string;
  disclosed_at: Date;
  purpose: string;
  recipient: Buffer;
  description: Buffer;
  source: 'manual' | 'export' | 'patient_link';
  export_id: string | null;
  recorded_by: string;
}

export async function insertDisclosure(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('disclosures').insert(row);
}

export function patientDisclosures(trx: Knex.Transaction, patientId: string, from: Date, to: Date, purposes: readonly string[] | undefined): Promise<DisclosureRow[]> {
  const q = trx('disclosures').where({ patient_id: patientId }).where('disclosed_at', '>=', from).where('disclosed_at', '<', to).orderBy('disclosed_at', 'desc').select<DisclosureRow[]>('*');
  if (purposes) q.whereIn('purpose', purposes);
  return q;
}

/** What the patient asked to restrict, and why the practice refused (encrypted). */
export const restrictionSecrets = encryptedColumns('patient_restrictions', { description: { type: 'text' }, refusal_reason: { type: 'text' } });

export const CHANNEL_RULES = ['email_only', 'text_only', 'no_email', 'no_text'] as const;
export type ChannelRule = (typeof CHANNEL_RULES)[number];

export interface RestrictionRow {
  id: string;
  patient_id: string;
  kind: 'restriction' | 'confidential_communication';
  decision: 'agreed' | 'refused';
  channel: ChannelRule | null;
  description: Buffer;
  refusal_reason: Buffer | null;
  decided_by: string;
  decided_at: Date;
  ended_at: Date | null;
}

export async function insertRestriction(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('patient_restrictions').insert(row);
}

export function patientRestrictions(trx: Knex.Transaction, patientId: string): Promise<RestrictionRow[]> {
  return trx('patient_restrictions').where({ patient_id: patientId }).orderBy('decided_at', 'desc').select<RestrictionRow[]>('*');
}

/** The confidential-communication rules the practice agreed to and that still hold for a patient. */
export function channelRules(trx: Knex.Transaction, patientId: string): Promise<ChannelRule[]> {
  return trx('patient_restrictions').where({ patient_id: patientId, kind: 'confidential_communication', decision: 'agreed' }).whereNull('ended_at').pluck('channel');
}

export function endRestriction(trx: Knex.Transaction, id: string, by: string, now: Date): Promise<number> {
  return trx('patient_restrictions').where({ id }).whereNull('ended_at').update({ ended_at: now, ended_by: by });
}

export function findRestriction(trx: Knex.Transaction, id: string): Promise<RestrictionRow | undefined> {
  return trx('patient_restrictions').where({ id }).first<RestrictionRow | undefined>();
}

/** A patient's requested amendment, the practice's answer and the statement of disagreement (encrypted). */
export const amendmentRequestSecrets = encryptedColumns('record_amendments', { requested_change: { type: 'text' }, response: { type: 'text' }, disagreement: { type: 'text' } });

export type AmendmentTarget = 'demographics' | 'clinical_note' | 'treatment_plan';

export interface RecordAmendmentRow {
  id: string;
  patient_id: string;
  request_id: string | null;
  target_type: AmendmentTarget;
  target_id: string;
  requested_change: Buffer;
  requested_at: Date;
  decision: 'pending' | 'accepted' | 'denied';
  response: Buffer | null;
  decided_by: string | null;
  decided_at: Date | null;
  disagreement: Buffer | null;
  disagreement_at: Date | null;
}

export async function insertRecordAmendment(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('record_amendments').insert(row);
}

export function findRecordAmendment(trx: Knex.Transaction, id: string): Promise<RecordAmendmentRow | undefined> {
  return trx('record_amendments').where({ id }).first<RecordAmendmentRow | undefined>();
}

export async function updateRecordAmendment(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<number> {
  return trx('record_amendments').where({ id }).update(changes);
}

export function recordAmendmentsOf(trx: Knex.Transaction, patientIds: readonly string[]): Promise<RecordAmendmentRow[]> {
  return trx('record_amendments').whereIn('patient_id', patientIds).orderBy('requested_at').select<RecordAmendmentRow[]>('*');
}

/** Whether `targetId` is this patient's note or plan (or the patient, for demographics). */
export async function targetBelongs(trx: Knex.Transaction, patientId: string, type: AmendmentTarget, targetId: string): Promise<boolean> {
  if (type === 'demographics') return targetId === patientId;
  const table = type === 'clinical_note' ? 'clinical_notes' : 'treatment_plans';
  return Boolean(await trx(table).where({ id: targetId, patient_id: patientId }).first('id'));
}

/** A patient's notes and plans an amendment may name (ids, dates; the plan's encrypted title). */
export async function amendmentTargets(trx: Knex.Transaction, patientId: string): Promise<{ type: 'clinical_note' | 'treatment_plan'; id: string; at: Date; title?: Buffer }[]> {
  const notes = await trx('clinical_notes').where({ patient_id: patientId }).orderBy('created_at').select<{ id: string; created_at: Date }[]>('id', 'created_at');
  const plans = await trx('treatment_plans').where({ patient_id: patientId }).orderBy('created_at').select<{ id: string; created_at: Date; title: Buffer }[]>('id', 'created_at', 'title');
  return [...notes.map((n) => ({ type: 'clinical_note' as const, id: n.id, at: n.created_at })), ...plans.map((p) => ({ type: 'treatment_plan' as const, id: p.id, at: p.created_at, title: p.title }))];
}

export interface AccessEventRow {
  occurred_at: Date;
  action: string;
  resource_type: string | null;
  reason: string | null;
  outcome: string;
  actor_id: string;
}

/** Every event by a staff member about this patient since `since` (newest first, bounded). */
export function patientAccessEvents(trx: Knex.Transaction, patientId: string, since: Date, limit: number): Promise<AccessEventRow[]> {
  return trx('audit_events')
    .where({ patient_id: patientId, actor_type: 'user' })
    .where('occurred_at', '>=', since)
    .orderBy('occurred_at', 'desc')
    .limit(limit)
    .select<AccessEventRow[]>('occurred_at', 'action', 'resource_type', 'reason', 'outcome', 'actor_id');
}

/** Staff members' names, role names and location names (the access report names who looked). */
export async function staffDirectory(trx: Knex.Transaction): Promise<Map<string, { name: string; roles: string[]; locations: string[] }>> {
  const users = await trx('users').select<{ id: string; display_name: string; is_owner: boolean }[]>('id', 'display_name', 'is_owner');
  const roles = await trx('user_roles as ur').join('roles as r', 'r.id', 'ur.role_id').select<{ user_id: string; name: string }[]>('ur.user_id', 'r.name');
  const locations = await trx('user_locations as ul').join('locations as l', 'l.id', 'ul.location_id').select<{ user_id: string; name: string }[]>('ul.user_id', 'l.name');
  return new Map(
    users.map((u) => [
      u.id,
      {
        name: u.display_name,
        roles: [...(u.is_owner ? ['Owner'] : []), ...roles.filter((r) => r.user_id === u.id).map((r) => r.name)],
        locations: locations.filter((l) => l.user_id === u.id).map((l) => l.name),
      },
    ]),
  );
}
