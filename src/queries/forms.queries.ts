import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';
import type { FormDefinition } from '../forms/definition.js';

/** The only SQL touching form templates, their versions and submissions. Runs inside withPractice. */

/** A submission's answers and signer (typed name, signature, drawing) are PHI: one envelope. */
export const submissionSecrets = encryptedColumns('form_submissions', {
  content: { type: 'json' },
});

export type TemplateRow = { id: string; key: string; archived_at: Date | null; version_id: string; version: number; definition: FormDefinition; created_at: Date };

export type SubmissionRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  template_version_id: string;
  link_id: string;
  content: Buffer;
  content_hash: string;
  submitted_at: Date;
  client_ip: string | null;
  user_agent: string | null;
  reviewed_by: string | null;
  reviewed_at: Date | null;
};

/** Each template with its newest version. */
function latest(trx: Knex.Transaction) {
  return trx('form_templates as t')
    .join('form_template_versions as v', 'v.template_id', 't.id')
    .whereNotExists(trx('form_template_versions as n').whereRaw('n.template_id = t.id AND n.version > v.version'))
    .select('t.id', 't.key', 't.archived_at', 'v.id as version_id', 'v.version', 'v.definition', 'v.created_at');
}

export function listTemplates(trx: Knex.Transaction): Promise<TemplateRow[]> {
  return latest(trx).orderBy('t.created_at').orderBy('t.key');
}

export function findTemplate(trx: Knex.Transaction, id: string): Promise<TemplateRow | undefined> {
  return latest(trx).where('t.id', id).first();
}

export function findTemplates(trx: Knex.Transaction, ids: readonly string[]): Promise<TemplateRow[]> {
  return latest(trx).whereIn('t.id', ids).orderBy('t.created_at').orderBy('t.key');
}

export function findVersion(trx: Knex.Transaction, id: string): Promise<{ id: string; template_id: string; version: number; definition: FormDefinition } | undefined> {
  return trx('form_template_versions').where({ id }).first('id', 'template_id', 'version', 'definition');
}

export async function insertTemplate(trx: Knex.Transaction, row: { id: string; practice_id: string; key: string }): Promise<boolean> {
  const r = await trx('form_templates').insert(row).onConflict(['practice_id', 'key']).ignore().returning('id');
  return r.length > 0;
}

export async function insertVersion(trx: Knex.Transaction, row: { id: string; practice_id: string; template_id: string; version: number; definition: FormDefinition; created_by: string | null }): Promise<void> {
  await trx('form_template_versions').insert({ ...row, definition: JSON.stringify(row.definition) });
}

export function setTemplateArchived(trx: Knex.Transaction, id: string, at: Date | null): Promise<number> {
  return trx('form_templates').where({ id }).update({ archived_at: at });
}

const SUBMISSION_COLUMNS = ['id', 'practice_id', 'patient_id', 'template_version_id', 'link_id', 'content', 'content_hash', 'submitted_at', 'client_ip', 'user_agent', 'reviewed_by', 'reviewed_at'] as const;

export async function insertSubmission(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('form_submissions').insert(row);
}

export function findSubmission(trx: Knex.Transaction, id: string): Promise<SubmissionRow | undefined> {
  return trx('form_submissions').where({ id }).first(SUBMISSION_COLUMNS);
}

/** A patient's submissions with their template and version (no content: the list needs none). */
export function listSubmissions(trx: Knex.Transaction, patientId: string): Promise<(Omit<SubmissionRow, 'content'> & { version: number; definition: FormDefinition })[]> {
  return trx('form_submissions as s')
    .join('form_template_versions as v', 'v.id', 's.template_version_id')
    .where('s.patient_id', patientId)
    .orderBy('s.submitted_at', 'desc')
    .limit(200)
    .select('s.id', 's.practice_id', 's.patient_id', 's.template_version_id', 's.link_id', 's.content_hash', 's.submitted_at', 's.client_ip', 's.user_agent', 's.reviewed_by', 's.reviewed_at', 'v.version', 'v.definition');
}

/** Template ids already answered through a link. */
export async function submittedTemplateIds(trx: Knex.Transaction, linkId: string): Promise<Set<string>> {
  const rows = await trx('form_submissions as s').join('form_template_versions as v', 'v.id', 's.template_version_id').where('s.link_id', linkId).select<{ template_id: string }[]>('v.template_id');
  return new Set(rows.map((r) => r.template_id));
}

export function markReviewed(trx: Knex.Transaction, id: string, by: string, at: Date): Promise<number> {
  return trx('form_submissions').where({ id }).whereNull('reviewed_at').update({ reviewed_by: by, reviewed_at: at });
}
