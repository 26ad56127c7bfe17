import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The short note on an appointment ("bring the night guard"): may say anything, so encrypted. */
export const appointmentSecrets = encryptedColumns('appointments', { note: { type: 'text' } });

export const APPOINTMENT_STATUSES = ['scheduled', 'confirmed', 'arrived', 'in_chair', 'completed', 'no_show', 'cancelled'] as const;
export type AppointmentStatus = (typeof APPOINTMENT_STATUSES)[number];
export const CANCEL_REASONS = ['patient_request', 'patient_no_answer', 'practice', 'illness', 'weather', 'rescheduled', 'other'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];
/** Statuses that hold the chair and the provider (the exclusion constraints' WHERE). */
export const LIVE_STATUSES: readonly AppointmentStatus[] = ['scheduled', 'confirmed', 'arrived', 'in_chair', 'completed'];

export interface OperatoryRow {
  id: string;
  location_id: string;
  name: string;
  position: number;
  archived_at: Date | null;
}

export interface KindRow {
  id: string;
  key: string | null;
  name: string;
  default_minutes: number;
  recall_months: number | null;
  archived_at: Date | null;
}

export interface AppointmentRow {
  id: string;
  practice_id: string;
  patient_id: string;
  location_id: string;
  provider_id: string;
  chair_id: string;
  kind_id: string;
  starts_at: Date;
  ends_at: Date;
  status: AppointmentStatus;
  cancel_reason: CancelReason | null;
  note: Buffer | null;
  plan_item_ids: string[];
  created_by: string;
}

export function listOperatories(trx: Knex.Transaction, locationId?: string): Promise<OperatoryRow[]> {
  const q = trx('operatories').whereNull('archived_at').orderBy(['location_id', 'position', 'name']).select<OperatoryRow[]>('id', 'location_id', 'name', 'position', 'archived_at');
  if (locationId) q.where({ location_id: locationId });
  return q;
}

/** Every chair a location ever had (archived too): the defaults are added only to a location that never had one. */
export function operatoryCount(trx: Knex.Transaction, locationId: string): Promise<number> {
  return trx('operatories').where({ location_id: locationId }).count<{ n: string }[]>({ n: '*' }).then((r) => Number(r[0]!.n));
}

export async function insertOperatory(trx: Knex.Transaction, row: { practice_id: string; location_id: string; name: string; position: number }): Promise<void> {
  await trx('operatories').insert(row).onConflict(['practice_id', 'location_id', 'name']).ignore();
}

export function listKinds(trx: Knex.Transaction): Promise<KindRow[]> {
  return trx('appointment_kinds').whereNull('archived_at').orderBy('name').select<KindRow[]>('id', 'key', 'name', 'default_minutes', 'recall_months', 'archived_at');
}

/** Every kind's name, archived ones too (old appointments keep theirs). */
export function kindNames(trx: Knex.Transaction): Promise<{ id: string; name: string }[]> {
  return trx('appointment_kinds').select<{ id: string; name: string }[]>('id', 'name');
}

export async function insertKind(trx: Knex.Transaction, row: { practice_id: string; key: string | null; name: string; default_minutes: number; recall_months: number | null }): Promise<void> {
  await trx('appointment_kinds').insert(row).onConflict(['practice_id', 'key']).ignore();
}

export async function insertAppointment(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('appointments').insert(row);
}

export function findAppointment(trx: Knex.Transaction, id: string): Promise<AppointmentRow | undefined> {
  return trx('appointments').where({ id }).first<AppointmentRow | undefined>();
}

export async function updateAppointment(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<void> {
  await trx('appointments').where({ id }).update({ ...changes, updated_at: trx.fn.now() });
}

/** Live appointments that overlap [start, end) on this chair or with this provider (the clash to name). */
export function clashes(trx: Knex.Transaction, o: { chairId: string; providerId: string; start: Date; end: Date; exceptId?: string }): Promise<AppointmentRow[]> {
  const q = trx('appointments')
    .whereIn('status', LIVE_STATUSES as string[])
    .where('starts_at', '<', o.end)
    .where('ends_at', '>', o.start)
    .where((w) => void w.where({ chair_id: o.chairId }).orWhere({ provider_id: o.providerId }))
    .orderBy('starts_at')
    .select<AppointmentRow[]>('*');
  if (o.exceptId) q.whereNot({ id: o.exceptId });
  return q;
}

/** A location's appointments that touch [from, to), cancelled ones too (the day view shows them apart). */
export function appointmentsBetween(trx: Knex.Transaction, locationId: string, from: Date, to: Date): Promise<AppointmentRow[]> {
  return trx('appointments').where({ location_id: locationId }).where('starts_at', '<', to).where('ends_at', '>', from).orderBy('starts_at').select<AppointmentRow[]>('*');
}

/** A patient's appointments around now: the last few and the next few. */
export function patientAppointments(trx: Knex.Transaction, patientId: string, limit: number): Promise<AppointmentRow[]> {
  return trx('appointments').where({ patient_id: patientId }).orderBy('starts_at', 'desc').limit(limit).select<AppointmentRow[]>('*');
}

/** Who can be booked as the provider: active accounts that write clinical notes (dentists, hygienists), and owners. */
export function scheduleProviders(trx: Knex.Transaction): Promise<{ id: string; display_name: string }[]> {
  return trx('users as u')
    .where('u.status', 'active')
    .where((w) =>
      void w.where('u.is_owner', true).orWhereExists(trx('user_roles as ur').join('roles as r', 'r.id', 'ur.role_id').whereRaw('ur.user_id = u.id').whereRaw("'clinical.write' = ANY (r.permissions)")),
    )
    .orderBy('u.display_name')
    .select('u.id', 'u.display_name');
}
