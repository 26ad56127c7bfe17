import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching patient documents. Runs inside withPractice. */

/** A document's title is typed by staff and may describe the patient: encrypted. */
export const documentSecrets = encryptedColumns('patient_documents', {
  title: { type: 'text' },
});

export type DocumentRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  kind: string;
  title: Buffer | null;
  content_type: string;
  file_id: string | null;
  thumb_file_id: string | null;
  width: number | null;
  height: number | null;
  byte_size: number;
  uploaded_by: string | null;
  uploaded_via_link: string | null;
  created_at: Date;
  deleted_at: Date | null;
};

const COLUMNS = ['id', 'practice_id', 'patient_id', 'kind', 'title', 'content_type', 'file_id', 'thumb_file_id', 'width', 'height', 'byte_size', 'uploaded_by', 'uploaded_via_link', 'created_at', 'deleted_at'] as const;

export function listDocuments(trx: Knex.Transaction, patientId: string): Promise<DocumentRow[]> {
  return trx('patient_documents').where({ patient_id: patientId }).whereNull('deleted_at').orderBy('created_at', 'desc').select(COLUMNS);
}

export function findDocument(trx: Knex.Transaction, id: string): Promise<DocumentRow | undefined> {
  return trx('patient_documents').where({ id }).whereNull('deleted_at').first(COLUMNS);
}

export async function insertDocument(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('patient_documents').insert(row);
}

export function markDocumentDeleted(trx: Knex.Transaction, id: string, by: string, now: Date): Promise<number> {
  return trx('patient_documents').where({ id }).whereNull('deleted_at').update({ deleted_at: now, deleted_by: by, file_id: null, thumb_file_id: null });
}

/** The blob names behind stored files (removed from the store after the transaction commits). */
export function objectNames(trx: Knex.Transaction, fileIds: readonly string[]): Promise<string[]> {
  return fileIds.length ? trx('stored_files').whereIn('id', fileIds).pluck('object_name') : Promise.resolve([]);
}

export function deleteStoredFiles(trx: Knex.Transaction, fileIds: readonly string[]): Promise<number> {
  return fileIds.length ? trx('stored_files').whereIn('id', fileIds).delete() : Promise.resolve(0);
}

/** Documents a patient uploaded through one link (newest first). */
export function linkDocuments(trx: Knex.Transaction, linkId: string): Promise<DocumentRow[]> {
  return trx('patient_documents').where({ uploaded_via_link: linkId }).whereNull('deleted_at').orderBy('created_at', 'desc').select(COLUMNS);
}
