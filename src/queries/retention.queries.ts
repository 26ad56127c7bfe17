import type { Knex } from 'knex';
import { deleteStaleCounters } from './throttle.queries.js';

/** The only SQL of retention: deletion requests, holds, the purge functions, cleanup. Tenant work runs inside withPractice. */

export interface PracticeRetentionRow {
  legal_hold_at: Date | null;
  terminated_at: Date | null;
  purge_after: Date | null;
  purged_at: Date | null;
  patient_purge_grace_days: number;
  inactive_account_days: number;
  audit_retention_years: number;
}

/** The current practice's retention settings and state (a purged practice has no settings left: the defaults). */
export async function findPracticeRetention(trx: Knex.Transaction): Promise<PracticeRetentionRow> {
  const row = await trx('practices as p')
    .leftJoin('practice_settings as s', 's.practice_id', 'p.id')
    .first<PracticeRetentionRow | undefined>(
      'p.legal_hold_at',
      'p.terminated_at',
      'p.purge_after',
      'p.purged_at',
      trx.raw('coalesce(s.patient_purge_grace_days, 30) AS patient_purge_grace_days'),
      trx.raw('coalesce(s.inactive_account_days, 90) AS inactive_account_days'),
      trx.raw('coalesce(s.audit_retention_years, 6) AS audit_retention_years'),
    );
  if (!row) throw new Error('no current practice');
  return row;
}

export function setPatientDeletion(trx: Knex.Transaction, id: string, change: { deletion_requested_at: Date | null; deletion_requested_by: string | null; purge_after: Date | null }): Promise<number> {
  return trx('patients').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

export function setPatientHold(trx: Knex.Transaction, id: string, change: { legal_hold_at: Date | null; legal_hold_by: string | null }): Promise<number> {
  return trx('patients').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

/** Sets or clears the current practice's legal hold; 0 when it was already so. */
export function setPracticeHold(trx: Knex.Transaction, at: Date | null): Promise<number> {
  const q = trx('practices');
  return (at ? q.whereNull('legal_hold_at') : q.whereNotNull('legal_hold_at')).update({ legal_hold_at: at, updated_at: trx.fn.now() });
}

/** Patients whose deletion grace has passed and who are not held (nor is the practice). */
export function duePatients(trx: Knex.Transaction, now: Date, limit: number): Promise<string[]> {
  return trx('patients as pa')
    .join('practices as pr', 'pr.id', 'pa.practice_id')
    .whereNotNull('pa.deletion_requested_at')
    .where('pa.purge_after', '<=', now)
    .whereNull('pa.legal_hold_at')
    .whereNull('pr.legal_hold_at')
    .orderBy('pa.purge_after')
    .limit(limit)
    .pluck('pa.id');
}

/** Every stored file (originals and thumbnails) of a patient's documents. */
export async function patientFileIds(trx: Knex.Transaction, patientId: string): Promise<string[]> {
  const rows = await trx('patient_documents').where({ patient_id: patientId }).select<{ file_id: string | null; thumb_file_id: string | null }[]>('file_id', 'thumb_file_id');
  return rows.flatMap((r) => [r.file_id, r.thumb_file_id]).filter((x): x is string => x !== null);
}

/** The purge function (migration 18): refuses unless due and not held; returns rows removed per table. */
export async function purgePatientRows(trx: Knex.Transaction, patientId: string, now: Date): Promise<Record<string, number>> {
  const r = await trx.raw<{ rows: { counts: Record<string, number> }[] }>('SELECT enamel_purge_patient(?, ?) AS counts', [patientId, now]);
  return r.rows[0]!.counts;
}

/** Whether the current practice is terminated, past its tail, not held and not yet purged. */
export async function practicePurgeDue(trx: Knex.Transaction, now: Date): Promise<boolean> {
  const row = await trx('practices').whereNotNull('terminated_at').where('purge_after', '<=', now).whereNull('purged_at').whereNull('legal_hold_at').first('id');
  return row !== undefined;
}

/** Whether the current practice was purged and its audit retention has passed (not held, audit not yet purged). */
export async function auditPurgeDue(trx: Knex.Transaction, now: Date): Promise<boolean> {
  const row = await trx('practices').whereNotNull('purged_at').whereNull('audit_purged_at').where('audit_purge_after', '<=', now).whereNull('legal_hold_at').first('id');
  return row !== undefined;
}

/** The audit purge function (migration 19): refuses unless due, sealed and signed; returns counts and the final head. */
export async function purgePracticeAudit(trx: Knex.Transaction, practiceId: string, now: Date): Promise<Record<string, number>> {
  const r = await trx.raw<{ rows: { counts: Record<string, number> }[] }>('SELECT enamel_purge_practice_audit(?, ?) AS counts', [practiceId, now]);
  return r.rows[0]!.counts;
}

export function practiceFileNames(trx: Knex.Transaction): Promise<string[]> {
  return trx('stored_files').pluck('object_name');
}

export async function purgePracticeRows(trx: Knex.Transaction, practiceId: string, now: Date): Promise<Record<string, number>> {
  const r = await trx.raw<{ rows: { counts: Record<string, number> }[] }>('SELECT enamel_purge_practice(?, ?) AS counts', [practiceId, now]);
  return r.rows[0]!.counts;
}

/** Marks the current practice terminated with its purge date (the tail). */
export function markTerminated(trx: Knex.Transaction, now: Date, purgeAfter: Date): Promise<number> {
  return trx('practices').whereNull('terminated_at').update({ terminated_at: now, purge_after: purgeAfter, updated_at: trx.fn.now() });
}

/** Which of these blob names a stored_files row (any practice's) still names: SECURITY DEFINER, names only. */
export async function knownObjects(knex: Knex, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const r = await knex.raw<{ rows: { name: string }[] }>('SELECT enamel_known_objects(?::text[]) AS name', [[...names]]);
  return new Set(r.rows.map((x) => x.name));
}

const DAY = 86_400_000;

export const cleanupExpired = {
  /** Non-tenant tables: expired sessions and stale per-IP throttle counters. */
  async global(knex: Knex, now: Date): Promise<Record<string, number>> {
    return {
      sessions: await knex('http_sessions').where('expire', '<', now).delete(),
      ip_counters: await deleteStaleCounters(knex, now),
    };
  },
  /** The current practice: used-up reset tokens and invitations, patient links 90 days after expiry. */
  async practice(trx: Knex.Transaction, now: Date): Promise<Record<string, number>> {
    return {
      reset_tokens: await trx('password_reset_tokens').where('expires_at', '<', new Date(now.getTime() - DAY)).delete(),
      invitations: await trx('user_invitations').where('expires_at', '<', new Date(now.getTime() - DAY)).delete(),
      patient_links: await trx('patient_links').where('expires_at', '<', new Date(now.getTime() - 90 * DAY)).delete(),
    };
  },
};
