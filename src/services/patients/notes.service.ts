import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { coversLocation } from '../../policies/actor.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { presentSummary, type PatientSummaryView } from '../../presenters/patient.presenter.js';
import { amendmentSecrets, findNote, insertAmendment, insertNote, listAmendments, listNotes, noteSecrets, updateNote, type NoteRow } from '../../queries/notes.queries.js';
import { patientSecrets } from '../../queries/patients.queries.js';
import { listLocations } from '../../queries/practices.queries.js';
import { locationIdsOfUsers } from '../../queries/roles.queries.js';
import { listUsers } from '../../queries/users.queries.js';
import type { Meta } from '../../shared/types.js';
import { loadPatientRecord } from './patients.service.js';
import { staffEvent as event, staffCryptoWork as work } from '../staff-work.js';
import type { AmendmentShown } from '../../presenters/patient.presenter.js';
import { amendmentViews } from '../rights/rights.service.js';

/**
 * Clinical notes: drafts by their author, signed (content hash fixed, then locked by the database),
 * corrected only by amendments that keep the original. Every read and write is audited with the
 * patient id; a covering provider from another location is recorded with both locations.
 */

export interface NoteDeps {
  db: Db;
  keyring: Keyring;
}

export interface NoteView {
  id: string;
  author: string;
  authorId: string;
  status: 'draft' | 'signed';
  body: string;
  createdAt: Date;
  signedAt: Date | null;
  contentHash: string | null;
  location: string;
  coveringFrom: string | null;
  editable: boolean;
  amendments: { author: string; body: string; createdAt: Date }[];
  /** Amendments the patient asked for (§164.526), decided: beside the note, which is unchanged. */
  patientAmendments: AmendmentShown[];
}

export interface NotesPage {
  patient: PatientSummaryView;
  canWrite: boolean;
  notes: NoteView[];
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');



export async function notesPage(d: NoteDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<NotesPage> {
  return work(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.readNotes', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'clinical.read' });
    const notes = await listNotes(trx, patientId);
    await audit.record(trx, event(actor, meta, { action: 'view', resource: { type: 'clinical_note' }, patientId, outcome: 'allowed', details: { count: notes.length } }));
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
    const amendments = await listAmendments(trx, notes.map((n) => n.id));
    const requested = (await amendmentViews(trx, pc, [patientId])).filter((a) => a.targetType === 'clinical_note' && a.decision !== 'pending');
    const views: NoteView[] = [];
    for (const n of notes) {
      const mine = amendments.filter((a) => a.note_id === n.id);
      const opened: NoteView['amendments'] = [];
      for (const a of mine) opened.push({ author: names.get(a.author_id) ?? 'unknown user', body: (await amendmentSecrets.open(pc, a)).body ?? '', createdAt: a.created_at });
      views.push({
        id: n.id,
        author: names.get(n.author_id) ?? 'unknown user',
        authorId: n.author_id,
        status: n.status,
        body: (await noteSecrets.open(pc, n)).body ?? '',
        createdAt: n.created_at,
        signedAt: n.signed_at,
        contentHash: n.content_hash,
        location: locations.get(n.location_id) ?? '',
        coveringFrom: n.author_location_id ? (locations.get(n.author_location_id) ?? '') : null,
        editable: authorize(actor, 'patient.editDraft', record, meta.now, { authorId: n.author_id, status: n.status }),
        amendments: opened,
        patientAmendments: requested.filter((a) => a.targetId === n.id),
      });
    }
    return { patient: presentSummary(row, await patientSecrets.open(pc, row), locations), canWrite: authorize(actor, 'patient.writeNotes', record, meta.now), notes: views };
  });
}

/** The author's own location when they write outside their locations (covering), else null. */
async function coveringLocation(trx: Knex.Transaction, actor: StaffActor, patientLocation: string): Promise<string | null> {
  if (coversLocation(actor, patientLocation)) return null;
  const own = (await locationIdsOfUsers(trx, [actor.id])).get(actor.id) ?? [];
  return own[0] ?? null;
}

/** A new note: a draft, or signed at once. */
export async function createNote(d: NoteDeps, actor: StaffActor, patientId: string, body: string, sign: boolean, meta: Meta): Promise<string> {
  return work(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.writeNotes', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'clinical.write' });
    const id = randomUUID();
    const covering = await coveringLocation(trx, actor, record.locationId);
    await insertNote(trx, {
      id,
      practice_id: actor.practiceId,
      patient_id: patientId,
      author_id: actor.id,
      location_id: record.locationId,
      author_location_id: covering,
      status: sign ? 'signed' : 'draft',
      signed_at: sign ? meta.now : null,
      content_hash: sign ? sha256(body) : null,
      ...(await noteSecrets.seal(pc, id, { body })),
    });
    const details = { location_id: record.locationId, ...(covering ? { covering_location_id: covering } : {}) };
    await audit.record(trx, event(actor, meta, { action: 'create', resource: { type: 'clinical_note', id }, patientId, outcome: 'allowed', details }));
    if (sign) await audit.record(trx, event(actor, meta, { action: 'sign', resource: { type: 'clinical_note', id }, patientId, outcome: 'allowed', details }));
    return id;
  });
}

async function loadNote(trx: Knex.Transaction, actor: StaffActor, noteId: string, meta: Meta): Promise<{ note: NoteRow; record: Awaited<ReturnType<typeof loadPatientRecord>>['record'] }> {
  const note = await findNote(trx, noteId, { forUpdate: true });
  if (!note) throw new AccessDenied({ resource: { type: 'clinical_note', id: noteId } });
  const { record } = await loadPatientRecord(trx, actor, note.patient_id, meta.now);
  return { note, record };
}

/** Changes the author's draft, and signs it if asked. A signed note is refused (amend it instead). */
export type NoteResult = { ok: true; patientId: string } | { ok: false; patientId: string; error: string; status: 400 | 409 };

const EMPTY = 'Write the text before saving it.';

export async function changeDraft(d: NoteDeps, actor: StaffActor, noteId: string, body: string, sign: boolean, meta: Meta): Promise<NoteResult> {
  return work(d, actor, async (trx, pc) => {
    const { note, record } = await loadNote(trx, actor, noteId, meta);
    ensure(authorize(actor, 'patient.readNotes', record, meta.now), { resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, permission: 'clinical.read' });
    if (note.status === 'signed') {
      await audit.record(trx, event(actor, meta, { action: 'update', resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, outcome: 'denied' }));
      return { ok: false, patientId: note.patient_id, error: 'This note is signed and locked. Add an amendment instead.', status: 409 };
    }
    ensure(authorize(actor, 'patient.editDraft', record, meta.now, { authorId: note.author_id, status: note.status }), { resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, permission: 'clinical.write' });
    if (!body) return { ok: false, patientId: note.patient_id, error: EMPTY, status: 400 };
    await updateNote(trx, noteId, { ...(await noteSecrets.seal(pc, noteId, { body })), ...(sign ? { status: 'signed', signed_at: meta.now, content_hash: sha256(body) } : {}) });
    await audit.record(trx, event(actor, meta, { action: sign ? 'sign' : 'update', resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, outcome: 'allowed' }));
    return { ok: true, patientId: note.patient_id };
  });
}

/** An amendment to a signed note: the original stays exactly as signed. */
export async function amendNote(d: NoteDeps, actor: StaffActor, noteId: string, body: string, meta: Meta): Promise<NoteResult> {
  return work(d, actor, async (trx, pc) => {
    const { note, record } = await loadNote(trx, actor, noteId, meta);
    ensure(authorize(actor, 'patient.writeNotes', record, meta.now), { resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, permission: 'clinical.write' });
    if (note.status !== 'signed') return { ok: false, patientId: note.patient_id, error: 'A draft is changed directly; amendments are for signed notes.', status: 409 };
    if (!body) return { ok: false, patientId: note.patient_id, error: EMPTY, status: 400 };
    const id = randomUUID();
    await insertAmendment(trx, { id, practice_id: actor.practiceId, note_id: noteId, author_id: actor.id, content_hash: sha256(body), ...(await amendmentSecrets.seal(pc, id, { body })) });
    await audit.record(trx, event(actor, meta, { action: 'amend', resource: { type: 'clinical_note', id: noteId }, patientId: note.patient_id, outcome: 'allowed', details: { reference_id: id } }));
    return { ok: true, patientId: note.patient_id };
  });
}
