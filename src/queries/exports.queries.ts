import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The archive's passphrase, kept encrypted until the archive is written (then set to NULL). */
export const exportSecrets = encryptedColumns('practice_exports', { passphrase: { type: 'text' } });

export type ExportStatus = 'queued' | 'running' | 'done' | 'failed' | 'expired';
export type ExportPhase = 'patients' | 'audit' | 'assemble' | 'finished';

export interface ExportRow {
  id: string;
  practice_id: string;
  /** The user who asked, or the patient's link when requested_via is 'patient_link'. */
  requested_by: string;
  requested_via: 'staff' | 'patient_link';
  scope: 'practice' | 'patient';
  patient_id: string | null;
  status: ExportStatus;
  phase: ExportPhase;
  total: number;
  done: number;
  cursor: string | null;
  batches: number;
  passphrase: Buffer | null;
  archive_file_id: string | null;
  archive_bytes: string | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  expires_at: Date | null;
}

export async function insertExport(trx: Knex.Transaction, row: Pick<ExportRow, 'id' | 'practice_id' | 'requested_by' | 'requested_via' | 'scope' | 'patient_id' | 'total'> & { passphrase: Buffer | null }): Promise<void> {
  await trx('practice_exports').insert(row);
}

export function findExport(trx: Knex.Transaction, id: string): Promise<ExportRow | undefined> {
  return trx('practice_exports').where({ id }).first<ExportRow | undefined>();
}

/** Locks the export for one batch (a second worker skips it). */
export function lockExport(trx: Knex.Transaction, id: string): Promise<ExportRow | undefined> {
  return trx('practice_exports').where({ id }).whereIn('status', ['queued', 'running']).forUpdate().skipLocked().first<ExportRow | undefined>();
}

export async function updateExport(trx: Knex.Transaction, id: string, changes: Partial<Omit<ExportRow, 'id' | 'practice_id'>>): Promise<void> {
  await trx('practice_exports').where({ id }).update(changes);
}

export function listExports(trx: Knex.Transaction, limit: number): Promise<ExportRow[]> {
  return trx('practice_exports').orderBy('created_at', 'desc').limit(limit).select<ExportRow[]>('*');
}

/** The exports one patient link asked for, newest first. */
export function linkExports(trx: Knex.Transaction, linkId: string, limit: number): Promise<ExportRow[]> {
  return trx('practice_exports').where({ requested_via: 'patient_link', requested_by: linkId }).orderBy('created_at', 'desc').limit(limit).select<ExportRow[]>('*');
}

/** Exports still to work on, across practices (ids only). */
export async function openExports(knex: Knex): Promise<{ practice_id: string; id: string }[]> {
  const r = await knex.raw<{ rows: { practice_id: string; id: string }[] }>('SELECT practice_id, id FROM enamel_open_exports()');
  return r.rows;
}

export async function insertExportPart(trx: Knex.Transaction, row: { practice_id: string; export_id: string; batch: number; resource_type: string; file_id: string; lines: number }): Promise<void> {
  await trx('practice_export_parts').insert(row).onConflict(['practice_id', 'export_id', 'batch', 'resource_type']).ignore();
}

export function exportParts(trx: Knex.Transaction, exportId: string): Promise<{ batch: number; resource_type: string; file_id: string; lines: number }[]> {
  return trx('practice_export_parts').where({ export_id: exportId }).orderBy(['resource_type', 'batch']).select('batch', 'resource_type', 'file_id', 'lines');
}

export function deleteExportParts(trx: Knex.Transaction, exportId: string): Promise<string[]> {
  return trx('practice_export_parts').where({ export_id: exportId }).del().returning('file_id').then((rows: { file_id: string }[]) => rows.map((r) => r.file_id));
}

/** Exports whose archive has expired (ready more than a week ago), for the cleanup. */
export function expiredExports(trx: Knex.Transaction, now: Date): Promise<{ id: string; archive_file_id: string | null }[]> {
  return trx('practice_exports').where('status', 'done').where('expires_at', '<=', now).select('id', 'archive_file_id');
}

// --- What an export reads, a batch of patients at a time -------------------------------------

export function countExportPatients(trx: Knex.Transaction, patientId: string | null): Promise<number> {
  const q = trx('patients');
  // A patient whose deletion was requested is hidden everywhere, exports too.
  if (patientId) q.where({ id: patientId });
  else q.whereNull('deletion_requested_at');
  return q.count<{ n: string }[]>({ n: '*' }).then((r) => Number(r[0]!.n));
}

/** The next patients after `after` (by id), or the one patient. */
export function exportPatientBatch(trx: Knex.Transaction, o: { after: string | null; limit: number; patientId: string | null }): Promise<({ id: string } & Record<string, unknown>)[]> {
  const q = trx('patients').orderBy('id').limit(o.limit).select('*');
  if (o.patientId) q.where({ id: o.patientId });
  else q.whereNull('deletion_requested_at');
  if (o.after) q.where('id', '>', o.after);
  return q;
}

type Row = { id: string } & Record<string, unknown>;

export const exportNotes = (trx: Knex.Transaction, patientIds: readonly string[]): Promise<Row[]> => trx('clinical_notes').whereIn('patient_id', patientIds).orderBy('created_at').select('*');
export const exportAmendments = (trx: Knex.Transaction, noteIds: readonly string[]): Promise<Row[]> => trx('clinical_note_amendments').whereIn('note_id', noteIds).orderBy('created_at').select('*');
export const exportPlans = (trx: Knex.Transaction, patientIds: readonly string[]): Promise<Row[]> => trx('treatment_plans').whereIn('patient_id', patientIds).orderBy('created_at').select('*');
export const exportPlanItems = (trx: Knex.Transaction, planIds: readonly string[]): Promise<Row[]> => trx('treatment_plan_items').whereIn('plan_id', planIds).orderBy(['phase', 'id']).select('*');
export const exportDecisions = (trx: Knex.Transaction, planIds: readonly string[]): Promise<Row[]> => trx('plan_decisions').whereIn('plan_id', planIds).select('*');
export const exportSubmissions = (trx: Knex.Transaction, patientIds: readonly string[]): Promise<Row[]> =>
  trx('form_submissions as s')
    .join('form_template_versions as v', function () {
      this.on('v.id', '=', 's.template_version_id').andOn('v.practice_id', '=', 's.practice_id');
    })
    .join('form_templates as t', function () {
      this.on('t.id', '=', 'v.template_id').andOn('t.practice_id', '=', 'v.practice_id');
    })
    .whereIn('s.patient_id', patientIds)
    .orderBy('s.submitted_at')
    .select('s.*', 'v.definition', 'v.version', 't.key as template_key');
export const exportDocuments = (trx: Knex.Transaction, patientIds: readonly string[]): Promise<Row[]> => trx('patient_documents').whereIn('patient_id', patientIds).orderBy('created_at').select('*');
export const exportLinks = (trx: Knex.Transaction, patientIds: readonly string[]): Promise<Row[]> =>
  trx('patient_links').whereIn('patient_id', patientIds).orderBy('created_at').select('id', 'patient_id', 'tasks', 'plan_id', 'created_at', 'expires_at', 'revoked_at', 'locked_at', 'verified_at', 'failed_attempts');
export const exportStaffNames = (trx: Knex.Transaction): Promise<{ id: string; display_name: string }[]> => trx('users').select('id', 'display_name');

/** A page of the practice's audit events after `afterId` (or the one patient's). */
export function exportAuditBatch(trx: Knex.Transaction, o: { afterId: string | null; limit: number; patientId: string | null }): Promise<Row[]> {
  const q = trx('audit_events').orderBy('id').limit(o.limit).select('id', 'occurred_at', 'actor_type', 'actor_id', 'action', 'resource_type', 'resource_id', 'patient_id', 'outcome', 'client_ip', 'reason');
  if (o.afterId) q.where('id', '>', o.afterId);
  if (o.patientId) q.where({ patient_id: o.patientId });
  return q as unknown as Promise<Row[]>;
}
