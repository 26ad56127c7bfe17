import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching clinical notes and their amendments. Runs inside withPractice. */

/** A signed note's content_hash is the SHA-256 of its body (and an amendment's of its own): key rotation checks it. */
export const noteSecrets = encryptedColumns('clinical_notes', { body: { type: 'text' } }, { contentHash: { column: 'body', hashColumn: 'content_hash' } });
export const amendmentSecrets = encryptedColumns('clinical_note_amendments', { body: { type: 'text' } }, { contentHash: { column: 'body', hashColumn: 'content_hash' } });

export type NoteRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  author_id: string;
  location_id: string;
  author_location_id: string | null;
  body: Buffer;
  status: 'draft' | 'signed';
  signed_at: Date | null;
  content_hash: string | null;
  created_at: Date;
  updated_at: Date;
};

export type AmendmentRow = {
  id: string;
  note_id: string;
  author_id: string;
  body: Buffer;
  content_hash: string;
  created_at: Date;
};

const NOTE_COLUMNS = ['id', 'practice_id', 'patient_id', 'author_id', 'location_id', 'author_location_id', 'body', 'status', 'signed_at', 'content_hash', 'created_at', 'updated_at'] as const;

export function listNotes(trx: Knex.Transaction, patientId: string): Promise<NoteRow[]> {
  return trx('clinical_notes').where({ patient_id: patientId }).orderBy('created_at', 'desc').select(NOTE_COLUMNS);
}

export function findNote(trx: Knex.Transaction, id: string, options: { forUpdate?: boolean } = {}): Promise<NoteRow | undefined> {
  const q = trx('clinical_notes').where({ id });
  if (options.forUpdate) q.forUpdate();
  return q.first(NOTE_COLUMNS);
}

export function listAmendments(trx: Knex.Transaction, noteIds: readonly string[]): Promise<AmendmentRow[]> {
  return noteIds.length ? trx('clinical_note_amendments').whereIn('note_id', noteIds).orderBy('created_at').select('id', 'note_id', 'author_id', 'body', 'content_hash', 'created_at') : Promise.resolve([]);
}

export async function insertNote(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('clinical_notes').insert(row);
}

export function updateNote(trx: Knex.Transaction, id: string, change: Record<string, unknown>): Promise<number> {
  return trx('clinical_notes').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

export async function insertAmendment(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('clinical_note_amendments').insert(row);
}
