import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching patients and break-glass grants. Runs inside withPractice (RLS). */

/** Every demographic field is encrypted; names, DOB, phone and email are searchable by blind index. */
export const patientSecrets = encryptedColumns('patients', {
  given_name: { type: 'text', blindIndex: 'name' },
  family_name: { type: 'text', blindIndex: 'name', moreIndexes: { family_name_prefix_bidx: 'name-prefix' } },
  date_of_birth: { type: 'date', blindIndex: 'dob' },
  sex: { type: 'text' },
  phone: { type: 'text', blindIndex: 'phone', moreIndexes: { phone_last4_bidx: 'phone-last4' } },
  email: { type: 'text', blindIndex: 'email' },
  address: { type: 'json' },
  preferred_contact: { type: 'text' },
  insurance: { type: 'json' },
  emergency_contact: { type: 'json' },
});

/** A break-glass justification is free text about a patient: encrypted like any PHI. */
export const breakGlassSecrets = encryptedColumns('break_glass_grants', {
  justification: { type: 'text' },
});

export type PatientStatus = 'active' | 'inactive' | 'deceased' | 'merged';

export type PatientRow = {
  id: string;
  practice_id: string;
  location_id: string;
  status: PatientStatus;
  merged_into_id: string | null;
  given_name: Buffer;
  family_name: Buffer;
  date_of_birth: Buffer;
  sex: Buffer | null;
  phone: Buffer | null;
  email: Buffer | null;
  address: Buffer | null;
  preferred_contact: Buffer | null;
  insurance: Buffer | null;
  emergency_contact: Buffer | null;
  sms_consent_at: Date | null;
  sms_consent_source: SmsConsentSource | null;
  deletion_requested_at: Date | null;
  purge_after: Date | null;
  legal_hold_at: Date | null;
  created_at: Date;
  updated_at: Date;
};

export const SMS_CONSENT_SOURCES = ['written', 'verbal', 'online'] as const;
export type SmsConsentSource = (typeof SMS_CONSENT_SOURCES)[number];

const COLUMNS = [
  'id', 'practice_id', 'location_id', 'status', 'merged_into_id', 'given_name', 'family_name', 'date_of_birth', 'sex', 'phone', 'email',
  'address', 'preferred_contact', 'insurance', 'emergency_contact', 'sms_consent_at', 'sms_consent_source', 'deletion_requested_at', 'purge_after', 'legal_hold_at', 'created_at', 'updated_at',
] as const;

export function findPatient(trx: Knex.Transaction, id: string): Promise<PatientRow | undefined> {
  return trx('patients').where({ id }).first<PatientRow | undefined>(COLUMNS);
}

/**
 * A patient opened by one user, in one statement: the row, its location's name, and when that user's
 * running break-glass grant on it ends (null without one) — what every patient page checks first.
 */
type EncodedAmendment = { id: string; decision: string; requested_at: string; decided_at: string | null; disagreement_at: string | null; requested_change: string; response: string | null; disagreement: string | null };
/** An amendment row as record_amendments holds it (bytea envelopes), from its JSON form. */
export interface DemographicAmendmentRow {
  id: string;
  decision: string;
  requested_at: Date;
  decided_at: Date | null;
  disagreement_at: Date | null;
  requested_change: Buffer;
  response: Buffer | null;
  disagreement: Buffer | null;
}
const decodeAmendment = (a: EncodedAmendment): DemographicAmendmentRow => ({
  id: a.id,
  decision: a.decision,
  requested_at: new Date(a.requested_at),
  decided_at: a.decided_at ? new Date(a.decided_at) : null,
  disagreement_at: a.disagreement_at ? new Date(a.disagreement_at) : null,
  requested_change: Buffer.from(a.requested_change, 'base64'),
  response: a.response ? Buffer.from(a.response, 'base64') : null,
  disagreement: a.disagreement ? Buffer.from(a.disagreement, 'base64') : null,
});

export async function findPatientFor(trx: Knex.Transaction, id: string, userId: string, now: Date): Promise<{ row: PatientRow; locationName: string; grantExpiresAt: Date | null; restrictions: { kind: string; channel: string | null }[]; demographicAmendments: DemographicAmendmentRow[] } | undefined> {
  const r = await trx('patients as p')
    .leftJoin('locations as l', 'l.id', 'p.location_id')
    .where('p.id', id)
    .first<(PatientRow & { location_name: string | null; grant_expires_at: Date | null }) | undefined>(
      ...COLUMNS.map((c) => `p.${c}`),
      'l.name as location_name',
      trx.raw('(SELECT max(g.expires_at) FROM break_glass_grants g WHERE g.user_id = ? AND g.patient_id = p.id AND g.granted_at <= ? AND g.expires_at > ?) AS grant_expires_at', [userId, now, now]),
      // The agreed restrictions and communication rules that hold (the chart's banner), in the same statement.
      trx.raw("(SELECT coalesce(json_agg(json_build_object('kind', r.kind, 'channel', r.channel) ORDER BY r.decided_at), '[]'::json) FROM patient_restrictions r WHERE r.patient_id = p.id AND r.decision = 'agreed' AND r.ended_at IS NULL) AS restrictions"),
      // Decided amendments of the demographics (shown beside them on the chart), encrypted, in the same statement.
      trx.raw(
        "(SELECT coalesce(json_agg(json_build_object('id', a.id, 'decision', a.decision, 'requested_at', a.requested_at, 'decided_at', a.decided_at, 'disagreement_at', a.disagreement_at, 'requested_change', encode(a.requested_change, 'base64'), 'response', encode(a.response, 'base64'), 'disagreement', encode(a.disagreement, 'base64')) ORDER BY a.requested_at), '[]'::json) FROM record_amendments a WHERE a.patient_id = p.id AND a.target_type = 'demographics' AND a.decision <> 'pending') AS amendments",
      ),
    );
  if (!r) return undefined;
  const { location_name, grant_expires_at, restrictions, amendments, ...row } = r as typeof r & { restrictions: { kind: string; channel: string | null }[]; amendments: EncodedAmendment[] };
  return { row: row as PatientRow, locationName: location_name ?? '', grantExpiresAt: grant_expires_at, restrictions, demographicAmendments: amendments.map(decodeAmendment) };
}

export function findPatients(trx: Knex.Transaction, ids: readonly string[]): Promise<PatientRow[]> {
  return trx('patients').whereIn('id', ids).select<PatientRow[]>(COLUMNS);
}

/** Patients whose blind index `column` is one of `indexes` (newest first, bounded). */
export type PatientIndex = 'family_name_bidx' | 'family_name_prefix_bidx' | 'date_of_birth_bidx' | 'phone_bidx' | 'phone_last4_bidx' | 'email_bidx';

export function findPatientsByIndex(trx: Knex.Transaction, column: PatientIndex, indexes: readonly Buffer[], limit: number): Promise<PatientRow[]> {
  if (indexes.length === 0) return Promise.resolve([]);
  // A patient whose deletion is requested is hidden from search at once (soft delete).
  return trx('patients').whereIn(column, indexes).whereNull('deletion_requested_at').orderBy('created_at', 'desc').limit(limit).select<PatientRow[]>(COLUMNS);
}

/** Same family name and date of birth (the duplicate warning on create). */
export function findByNameAndDob(trx: Knex.Transaction, familyIndexes: readonly Buffer[], dobIndexes: readonly Buffer[]): Promise<PatientRow[]> {
  if (familyIndexes.length === 0 || dobIndexes.length === 0) return Promise.resolve([]);
  return trx('patients').whereIn('family_name_bidx', familyIndexes).whereIn('date_of_birth_bidx', dobIndexes).whereNot({ status: 'merged' }).limit(20).select<PatientRow[]>(COLUMNS);
}

export async function insertPatient(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('patients').insert(row);
}

export function updatePatient(trx: Knex.Transaction, id: string, change: Record<string, unknown>): Promise<number> {
  return trx('patients').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

/** The patients this user viewed most recently (from the audit log: no extra table), newest first. */
export async function recentPatientIds(trx: Knex.Transaction, userId: string, limit: number): Promise<string[]> {
  const rows = await trx('audit_events')
    .where({ actor_type: 'user', actor_id: userId, action: 'view', resource_type: 'patient', outcome: 'allowed' })
    .whereNotNull('patient_id')
    .where('occurred_at', '>', trx.raw("now() - interval '30 days'"))
    .groupBy('patient_id')
    .orderByRaw('max(id) DESC')
    .limit(limit)
    .select<{ patient_id: string }[]>('patient_id');
  return rows.map((r) => r.patient_id);
}

export type BreakGlassRow = {
  id: string;
  user_id: string;
  patient_id: string;
  reason_code: string;
  justification: Buffer;
  granted_at: Date;
  expires_at: Date;
  reviewed_by: string | null;
  reviewed_at: Date | null;
};

const GRANT_COLUMNS = ['id', 'user_id', 'patient_id', 'reason_code', 'justification', 'granted_at', 'expires_at', 'reviewed_by', 'reviewed_at'] as const;

/** The user's break-glass grant on this patient that is still running at `now`, if any. */
export function activeBreakGlass(trx: Knex.Transaction, userId: string, patientId: string, now: Date): Promise<BreakGlassRow | undefined> {
  return trx('break_glass_grants').where({ user_id: userId, patient_id: patientId }).where('granted_at', '<=', now).where('expires_at', '>', now).orderBy('expires_at', 'desc').first(GRANT_COLUMNS);
}

export async function insertBreakGlass(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('break_glass_grants').insert(row);
}

export function listBreakGlass(trx: Knex.Transaction, limit: number): Promise<BreakGlassRow[]> {
  return trx('break_glass_grants').orderByRaw('reviewed_at IS NOT NULL, granted_at DESC').limit(limit).select(GRANT_COLUMNS);
}

export function findBreakGlass(trx: Knex.Transaction, id: string): Promise<BreakGlassRow | undefined> {
  return trx('break_glass_grants').where({ id }).first(GRANT_COLUMNS);
}

export function markBreakGlassReviewed(trx: Knex.Transaction, id: string, reviewerId: string, now: Date): Promise<number> {
  return trx('break_glass_grants').where({ id }).whereNull('reviewed_at').update({ reviewed_by: reviewerId, reviewed_at: now });
}
