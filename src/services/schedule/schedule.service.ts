import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import type { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { formatter, zonedInstant } from '../../presenters/format.js';
import { findPatients, patientSecrets } from '../../queries/patients.queries.js';
import { findPracticeSettings, listLocations } from '../../queries/practices.queries.js';
import {
  appointmentSecrets,
  appointmentsBetween,
  clashes,
  findAppointment,
  insertAppointment,
  insertKind,
  insertOperatory,
  kindNames,
  listKinds,
  listOperatories,
  operatoryCount,
  patientAppointments,
  scheduleProviders,
  updateAppointment,
  type AppointmentRow,
  type AppointmentStatus,
  type CancelReason,
} from '../../queries/schedule.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { staffCryptoWork, staffEvent } from '../staff-work.js';

/**
 * The schedule (docs/SCHEDULE.md): appointments per location, chair and provider. A booking or a
 * move that would overlap a live appointment on the same chair or with the same provider is refused
 * with the clash named; the database refuses it too (exclusion constraints, migration 35), so two
 * desks booking at once cannot both win. Showing the schedule names patients: each one named is an
 * audited read.
 */

type D = { db: Db; keyring: Keyring };

/** The kinds every practice starts with (by key; edited ones are left alone). */
export const DEFAULT_KINDS = [
  { key: 'exam', name: 'Exam', default_minutes: 60, recall_months: null },
  { key: 'cleaning', name: 'Cleaning', default_minutes: 60, recall_months: 6 },
  { key: 'filling', name: 'Filling', default_minutes: 60, recall_months: null },
  { key: 'crown', name: 'Crown', default_minutes: 90, recall_months: null },
  { key: 'emergency', name: 'Emergency', default_minutes: 30, recall_months: null },
] as const;

/** Default kinds, and two chairs at a location that never had one. Runs inside withPractice. */
export async function ensureDefaultSchedule(trx: Knex.Transaction, practiceId: string): Promise<void> {
  for (const k of DEFAULT_KINDS) await insertKind(trx, { practice_id: practiceId, ...k });
  for (const l of await listLocations(trx)) {
    if ((await operatoryCount(trx, l.id)) === 0) for (const [i, name] of ['Chair 1', 'Chair 2'].entries()) await insertOperatory(trx, { practice_id: practiceId, location_id: l.id, name, position: i });
  }
}

const mayUseLocation = (actor: StaffActor, locationId: string) => actor.locations === 'all' || actor.locations.has(locationId);

export interface DayAppointment {
  id: string;
  patientId: string;
  /** "Family, Given", or null when the actor may not see this patient (another location). */
  patientName: string | null;
  chairId: string;
  providerId: string;
  providerName: string;
  kindName: string;
  startsAt: Date;
  endsAt: Date;
  minutes: number;
  status: AppointmentStatus;
  cancelReason: CancelReason | null;
  note: string | null;
}

export interface DayView {
  day: string;
  timeZone: string;
  location: { id: string; name: string };
  locations: { id: string; name: string }[];
  chairs: { id: string; name: string }[];
  providers: { id: string; name: string }[];
  kinds: { id: string; name: string; minutes: number }[];
  appointments: DayAppointment[];
  /** Each time row of the day (from the first opening hour to the last), as "HH:MM" in the practice's zone. */
  slots: string[];
  mayBook: boolean;
}

/** Rows from 07:00 to 19:00 every 15 minutes, widened to take in any appointment outside them. */
function slotsFor(appointments: readonly { startsAt: Date; endsAt: Date }[], day: string, tz: string): string[] {
  const clock = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const minuteOf = (d: Date) => {
    const [h, m] = clock.format(d).split(':').map(Number) as [number, number];
    return h * 60 + m;
  };
  let first = 7 * 60;
  let last = 19 * 60;
  const dateOf = formatter('YYYY-MM-DD', tz);
  for (const a of appointments) {
    if (dateOf.date(a.startsAt) === day) first = Math.min(first, Math.floor(minuteOf(a.startsAt) / 15) * 15);
    if (dateOf.date(a.endsAt) === day) last = Math.max(last, Math.ceil(minuteOf(a.endsAt) / 15) * 15);
  }
  const out: string[] = [];
  for (let m = first; m < last; m += 15) out.push(`${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
  return out;
}

/** A location's day (the front desk's home page). */
export async function scheduleDay(d: D, actor: StaffActor, q: { locationId?: string; day?: string }, meta: Meta): Promise<DayView> {
  ensure(authorize(actor, 'practice.readSchedule'), { permission: 'schedule.read', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const tz = (await findPracticeSettings(trx))?.timezone ?? 'UTC';
    const locations = (await listLocations(trx)).filter((l) => mayUseLocation(actor, l.id)).map((l) => ({ id: l.id, name: l.name }));
    const location = locations.find((l) => l.id === q.locationId) ?? locations[0];
    if (!location) throw new AccessDenied({ resource: { type: 'location' } });
    const day = q.day ?? formatter('YYYY-MM-DD', tz).date(meta.now);
    const from = zonedInstant(day, '00:00', tz);
    const nextDay = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    const to = zonedInstant(nextDay, '00:00', tz);
    const rows = await appointmentsBetween(trx, location.id, from, to);
    // PERF: the providers are read once, for the names on the appointments and the page's list.
    const providerRows = await scheduleProviders(trx);
    const appointments = await present(trx, pc, actor, rows, meta, providerRows);
    const kinds = await listKinds(trx);
    return {
      day,
      timeZone: tz,
      location,
      locations,
      chairs: (await listOperatories(trx, location.id)).map((c) => ({ id: c.id, name: c.name })),
      providers: providerRows.map((p) => ({ id: p.id, name: p.display_name })),
      kinds: kinds.map((k) => ({ id: k.id, name: k.name, minutes: k.default_minutes })),
      appointments,
      slots: slotsFor(appointments.filter((a) => a.status !== 'cancelled'), day, tz),
      mayBook: authorize(actor, 'practice.manageSchedule'),
    };
  });
}

/** Appointments with their patients' names: one audited `list` read per patient the actor may see. */
async function present(trx: Knex.Transaction, pc: PracticeCrypto, actor: StaffActor, rows: AppointmentRow[], meta: Meta, providerRows?: { id: string; display_name: string }[]): Promise<DayAppointment[]> {
  const patients = new Map((await findPatients(trx, [...new Set(rows.map((r) => r.patient_id))])).map((p) => [p.id, p]));
  const providers = new Map((providerRows ?? (await scheduleProviders(trx))).map((p) => [p.id, p.display_name]));
  const kinds = new Map((await kindNames(trx)).map((k) => [k.id, k.name]));
  const names = new Map<string, string | null>();
  for (const [id, p] of patients) {
    if (!authorize(actor, 'patient.show', { practiceId: p.practice_id, id: p.id, locationId: p.location_id }, meta.now)) {
      names.set(id, null);
      continue;
    }
    // PERF: only the name columns are decrypted (a day names up to a hundred patients).
    const v = await patientSecrets.open(pc, { id: p.id, given_name: p.given_name, family_name: p.family_name });
    names.set(id, `${v.family_name ?? ''}, ${v.given_name ?? ''}`);
    await audit.record(trx, staffEvent(actor, meta, { action: 'list', resource: { type: 'appointment' }, patientId: id, outcome: 'allowed' }));
  }
  const out: DayAppointment[] = [];
  for (const r of rows) {
    const visible = names.get(r.patient_id) ?? null;
    out.push({
      id: r.id,
      patientId: r.patient_id,
      patientName: visible,
      chairId: r.chair_id,
      providerId: r.provider_id,
      providerName: providers.get(r.provider_id) ?? 'Former staff member',
      kindName: kinds.get(r.kind_id) ?? '',
      startsAt: r.starts_at,
      endsAt: r.ends_at,
      minutes: Math.round((r.ends_at.getTime() - r.starts_at.getTime()) / 60_000),
      status: r.status,
      cancelReason: r.cancel_reason,
      note: visible !== null ? (await appointmentSecrets.open(pc, r as never)).note : null,
    });
  }
  return out;
}

export interface BookingInput {
  locationId: string;
  chairId: string;
  providerId: string;
  kindId: string;
  day: string;
  time: string;
  minutes: number | null;
  note: string;
}

const clashMessage = async (trx: Knex.Transaction, c: AppointmentRow, chairId: string, tz: string): Promise<{ error: string; field: string }> => {
  const f = formatter('YYYY-MM-DD', tz);
  const span = `${f.dateTime(c.starts_at).replace(/^\S+ /, '')}–${f.dateTime(c.ends_at).replace(/^\S+ /, '')}`;
  if (c.chair_id === chairId) {
    const chair = (await listOperatories(trx)).find((x) => x.id === c.chair_id);
    return { error: `${chair?.name ?? 'That chair'} is already booked ${span}. Choose another time or chair.`, field: 'time' };
  }
  const provider = (await scheduleProviders(trx)).find((p) => p.id === c.provider_id);
  return { error: `${provider?.display_name ?? 'That provider'} already has an appointment ${span}. Choose another time or provider.`, field: 'providerId' };
};

/** Checks a slot and returns its times, or the problem (a clash named). */
async function checkSlot(trx: Knex.Transaction, input: BookingInput, kindMinutes: number, exceptId?: string): Promise<{ ok: true; start: Date; end: Date } | { ok: false; error: string; field: string }> {
  const tz = (await findPracticeSettings(trx))?.timezone ?? 'UTC';
  const chair = (await listOperatories(trx, input.locationId)).find((c) => c.id === input.chairId);
  if (!chair) return { ok: false, error: 'Choose a chair of this location.', field: 'chairId' };
  if (!(await scheduleProviders(trx)).some((p) => p.id === input.providerId)) return { ok: false, error: 'Choose the provider from the list.', field: 'providerId' };
  const start = zonedInstant(input.day, input.time, tz);
  const end = new Date(start.getTime() + (input.minutes ?? kindMinutes) * 60_000);
  const [clash] = await clashes(trx, { chairId: input.chairId, providerId: input.providerId, start, end, ...(exceptId ? { exceptId } : {}) });
  if (clash) return { ok: false, ...(await clashMessage(trx, clash, input.chairId, tz)) };
  return { ok: true, start, end };
}

/** SECURITY: the exclusion constraints' refusal (a booking raced past the check) becomes the same named clash. */
async function orClash<T>(trx: Knex.Transaction, write: () => Promise<T>, input: BookingInput, start: Date, end: Date, exceptId?: string): Promise<FormResult<T>> {
  await trx.raw('SAVEPOINT booking');
  try {
    const value = await write();
    await trx.raw('RELEASE SAVEPOINT booking');
    return { ok: true, value };
  } catch (err) {
    if ((err as { code?: string }).code !== '23P01') throw err;
    await trx.raw('ROLLBACK TO SAVEPOINT booking');
    const tz = (await findPracticeSettings(trx))?.timezone ?? 'UTC';
    const [clash] = await clashes(trx, { chairId: input.chairId, providerId: input.providerId, start, end, ...(exceptId ? { exceptId } : {}) });
    return clash ? { ok: false, ...(await clashMessage(trx, clash, input.chairId, tz)) } : { ok: false, error: 'Someone booked this time a moment ago. Choose another time.', field: 'time' };
  }
}

export async function bookAppointment(d: D, actor: StaffActor, patientId: string, input: BookingInput, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.manageSchedule'), { permission: 'schedule.manage', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId });
    if (!mayUseLocation(actor, input.locationId)) return { ok: false, error: 'Choose one of your locations.', field: 'locationId' };
    const kind = (await listKinds(trx)).find((k) => k.id === input.kindId);
    if (!kind) return { ok: false, error: 'Choose the kind of appointment.', field: 'kindId' };
    const slot = await checkSlot(trx, input, kind.default_minutes);
    if (!slot.ok) return slot;
    const id = randomUUID();
    const r = await orClash(trx, async () => {
      await insertAppointment(trx, { id, practice_id: actor.practiceId, patient_id: patientId, location_id: input.locationId, provider_id: input.providerId, chair_id: input.chairId, kind_id: kind.id, starts_at: slot.start, ends_at: slot.end, created_by: actor.id, ...(await appointmentSecrets.seal(pc, id, { note: input.note || null })) });
      return id;
    }, input, slot.start, slot.end);
    if (r.ok) await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'appointment', id }, patientId, outcome: 'allowed' }));
    return r;
  });
}

async function loadAppointment(trx: Knex.Transaction, actor: StaffActor, id: string, now: Date): Promise<AppointmentRow> {
  const a = await findAppointment(trx, id);
  if (!a || !mayUseLocation(actor, a.location_id)) throw new AccessDenied({ resource: { type: 'appointment', id } });
  const { record } = await loadPatientRecord(trx, actor, a.patient_id, now);
  ensure(authorize(actor, 'patient.show', record, now), { resource: { type: 'appointment', id }, patientId: a.patient_id });
  return a;
}

/** Moves an appointment to another time, chair or provider (its length may change). */
export async function moveAppointment(d: D, actor: StaffActor, id: string, input: Omit<BookingInput, 'kindId' | 'note' | 'locationId'>, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.manageSchedule'), { permission: 'schedule.manage', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx) => {
    const a = await loadAppointment(trx, actor, id, meta.now);
    if (a.status === 'cancelled' || a.status === 'completed' || a.status === 'no_show') return { ok: false, error: 'A cancelled, completed or missed appointment cannot be moved; book a new one.' };
    const full: BookingInput = { ...input, locationId: a.location_id, kindId: a.kind_id, note: '' };
    const slot = await checkSlot(trx, full, Math.round((a.ends_at.getTime() - a.starts_at.getTime()) / 60_000), id);
    if (!slot.ok) return slot;
    const r = await orClash(trx, () => updateAppointment(trx, id, { chair_id: input.chairId, provider_id: input.providerId, starts_at: slot.start, ends_at: slot.end }).then(() => id), full, slot.start, slot.end, id);
    if (r.ok) await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'appointment', id }, patientId: a.patient_id, outcome: 'allowed' }));
    return r;
  });
}

const NEXT: Record<AppointmentStatus, readonly AppointmentStatus[]> = {
  scheduled: ['confirmed', 'arrived', 'no_show'],
  confirmed: ['arrived', 'no_show'],
  arrived: ['in_chair', 'completed'],
  in_chair: ['completed'],
  completed: [],
  no_show: [],
  cancelled: [],
};

/** The day's progress: confirmed, arrived, in the chair, completed, or a no-show. */
export async function setAppointmentStatus(d: D, actor: StaffActor, id: string, status: Exclude<AppointmentStatus, 'cancelled' | 'scheduled'>, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.manageSchedule'), { permission: 'schedule.manage', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx) => {
    const a = await loadAppointment(trx, actor, id, meta.now);
    if (!NEXT[a.status].includes(status)) return { ok: false, error: `An appointment that is ${a.status.replace('_', ' ')} cannot become ${status.replace('_', ' ')}.` };
    await updateAppointment(trx, id, { status });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'appointment', id }, patientId: a.patient_id, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

/** Cancels with its reason; the chair and the provider are free again. */
export async function cancelAppointment(d: D, actor: StaffActor, id: string, reason: CancelReason, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.manageSchedule'), { permission: 'schedule.manage', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx) => {
    const a = await loadAppointment(trx, actor, id, meta.now);
    if (!['scheduled', 'confirmed'].includes(a.status)) return { ok: false, error: 'Only a scheduled or confirmed appointment can be cancelled.' };
    await updateAppointment(trx, id, { status: 'cancelled', cancel_reason: reason });
    await audit.record(trx, staffEvent(actor, meta, { action: 'update', resource: { type: 'appointment', id }, patientId: a.patient_id, outcome: 'allowed' }));
    return { ok: true, value: id };
  });
}

export interface BookingChoices {
  patientId: string;
  patientName: string;
  locations: { id: string; name: string; chairs: { id: string; name: string }[] }[];
  providers: { id: string; name: string }[];
  kinds: { id: string; name: string; minutes: number }[];
  defaultLocationId: string;
  upcoming: DayAppointment[];
}

/** What the booking form offers for a patient (the patient's name on it is an audited read). */
export async function bookingChoices(d: D, actor: StaffActor, patientId: string, meta: Meta): Promise<BookingChoices> {
  ensure(authorize(actor, 'practice.manageSchedule'), { permission: 'schedule.manage', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId });
    const v = await patientSecrets.open(pc, row);
    const chairs = await listOperatories(trx);
    const locations = (await listLocations(trx)).filter((l) => mayUseLocation(actor, l.id)).map((l) => ({ id: l.id, name: l.name, chairs: chairs.filter((c) => c.location_id === l.id).map((c) => ({ id: c.id, name: c.name })) }));
    const upcoming = (await patientAppointments(trx, patientId, 20)).filter((a) => a.ends_at > meta.now && a.status !== 'cancelled').reverse();
    await audit.record(trx, staffEvent(actor, meta, { action: 'view', resource: { type: 'appointment' }, patientId, outcome: 'allowed' }));
    return {
      patientId,
      patientName: `${v.given_name ?? ''} ${v.family_name ?? ''}`.trim(),
      locations,
      providers: (await scheduleProviders(trx)).map((p) => ({ id: p.id, name: p.display_name })),
      kinds: (await listKinds(trx)).map((k) => ({ id: k.id, name: k.name, minutes: k.default_minutes })),
      defaultLocationId: locations.find((l) => l.id === row.location_id)?.id ?? locations[0]?.id ?? '',
      upcoming: await present(trx, pc, actor, upcoming, meta),
    };
  });
}

export interface AppointmentPage {
  appointment: DayAppointment;
  locationId: string;
  day: string;
  time: string;
  chairs: { id: string; name: string }[];
  providers: { id: string; name: string }[];
  mayBook: boolean;
  next: AppointmentStatus[];
}

/** One appointment (its page: move it, its progress, cancel it). */
export async function appointmentPage(d: D, actor: StaffActor, id: string, meta: Meta): Promise<AppointmentPage> {
  ensure(authorize(actor, 'practice.readSchedule'), { permission: 'schedule.read', resource: { type: 'appointment' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const a = await loadAppointment(trx, actor, id, meta.now);
    const tz = (await findPracticeSettings(trx))?.timezone ?? 'UTC';
    const [view] = await present(trx, pc, actor, [a], meta);
    const local = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(a.starts_at);
    const part = (t: string) => local.find((x) => x.type === t)?.value ?? '';
    return {
      appointment: view!,
      locationId: a.location_id,
      day: `${part('year')}-${part('month')}-${part('day')}`,
      time: `${part('hour')}:${part('minute')}`,
      chairs: (await listOperatories(trx, a.location_id)).map((c) => ({ id: c.id, name: c.name })),
      providers: (await scheduleProviders(trx)).map((p) => ({ id: p.id, name: p.display_name })),
      mayBook: authorize(actor, 'practice.manageSchedule'),
      next: [...NEXT[a.status]],
    };
  });
}

/**
 * A patient's last and next appointments for the chart (holders of the schedule permissions only;
 * undefined for others). NOTE: a transaction of its own beside the chart's one statement: two more
 * round trips for the front desk's chart view.
 */
export async function chartAppointments(d: D, actor: StaffActor, patientId: string, meta: Meta): Promise<{ next: DayAppointment[]; past: DayAppointment[] } | undefined> {
  if (!authorize(actor, 'practice.readSchedule')) return undefined;
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId });
    const rows = await patientAppointments(trx, patientId, 12);
    const views = await present(trx, pc, actor, rows, meta);
    return { next: views.filter((a) => a.endsAt > meta.now).reverse(), past: views.filter((a) => a.endsAt <= meta.now).slice(0, 5) };
  });
}
