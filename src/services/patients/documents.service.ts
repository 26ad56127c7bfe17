import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { audit } from '../../audit/record.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import { openFile, readFileFully, saveFile } from '../../crypto/encrypted-files.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { DOCUMENT_KINDS, OFFICE_DOCUMENT_KINDS, type DocumentKind } from '../../documents/kinds.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { presentSummary, type PatientSummaryView } from '../../presenters/patient.presenter.js';
import { deleteStoredFiles, documentSecrets, findDocument, type DocumentRow, insertDocument, linkDocuments, listDocuments, markDocumentDeleted, objectNames } from '../../queries/documents.queries.js';
import { patientSecrets } from '../../queries/patients.queries.js';
import { listLocations } from '../../queries/practices.queries.js';
import { listUsers } from '../../queries/users.queries.js';
import { StorageError, type FileStore } from '../../storage/file-store.js';
import { raiseInstallationAlert } from '../alerts/alerts.service.js';
import type { Accepted } from '../../uploads/pipeline.js';
import type { Variant } from '../../uploads/signed-urls.js';
import type { Meta } from '../../shared/types.js';
import { linkEvent, linkWork, type LinkSession } from '../links/link-work.js';
import { loadPatientRecord } from './patients.service.js';
import { staffWork } from '../staff-work.js';

/**
 * Patient documents and images: upload (after the upload pipeline) into the encrypted file store,
 * list, view/download (every one audited before a byte is sent), delete (the row stays as a trail;
 * the blobs go after commit).
 */

export { DOCUMENT_KINDS, type DocumentKind } from '../../documents/kinds.js';

/** The kinds this actor may file: all of them, or only the office's paperwork for those who see only that. */
export function uploadableKinds(actor: StaffActor): readonly DocumentKind[] {
  return !actor.permissions.has('documents.download') && actor.permissions.has('documents.office') ? OFFICE_DOCUMENT_KINDS : DOCUMENT_KINDS;
}

export interface DocumentDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
}

export interface DocumentView {
  id: string;
  kind: string;
  title: string;
  contentType: string;
  isImage: boolean;
  width: number | null;
  height: number | null;
  byteSize: number;
  createdAt: Date;
  uploadedBy: string;
}

export interface DocumentsPage {
  patient: PatientSummaryView;
  canUpload: boolean;
  canView: boolean;
  /** Documents of kinds this role does not see (clinical images for the front desk): a count, no more. */
  hidden: number;
  /** The kinds the upload form offers. */
  kinds: readonly DocumentKind[];
  documents: DocumentView[];
}

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'application/pdf': 'pdf' };

export async function documentsPage(d: DocumentDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<DocumentsPage> {
  return staffWork(d.db, actor, async (trx) => {
    const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    const canView = authorize(actor, 'patient.viewDocuments', record, meta.now);
    const canUpload = authorize(actor, 'patient.uploadDocument', record, meta.now);
    ensure(canView || canUpload, { resource: { type: 'patient', id: patientId }, patientId });
    const all = canView ? await listDocuments(trx, patientId) : [];
    const rows = all.filter((r) => authorize(actor, 'patient.viewDocument', record, meta.now, r.kind));
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'list', resource: { type: 'document' }, patientId, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId, details: { count: rows.length } });
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
    const documents: DocumentView[] = [];
    for (const r of rows) documents.push(await present(pc, r, names));
    return { patient: presentSummary(row, await patientSecrets.open(pc, row), locations), canUpload, canView, hidden: all.length - rows.length, kinds: uploadableKinds(actor), documents };
  });
}

/** A document's viewer page: the patient, what it is, and whether it is an image (the image itself comes through a signed URL). */
export interface DocumentViewerPage {
  patient: PatientSummaryView;
  document: DocumentView;
}

/** SECURITY: the document's title and its patient are PHI: the page is an audited `list` read of that document. */
export async function documentViewer(d: DocumentDeps, actor: StaffActor, docId: string, meta: Meta): Promise<DocumentViewerPage> {
  return staffWork(d.db, actor, async (trx) => {
    const doc = await findDocument(trx, docId);
    if (!doc || !doc.file_id) throw new AccessDenied({ resource: { type: 'document', id: docId } });
    const { row, record } = await loadPatientRecord(trx, actor, doc.patient_id, meta.now);
    ensure(authorize(actor, 'patient.viewDocument', record, meta.now, doc.kind), { resource: { type: 'document', id: docId }, patientId: doc.patient_id, permission: 'documents.download' });
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'list', resource: { type: 'document', id: docId }, patientId: doc.patient_id, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId });
    const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
    return { patient: presentSummary(row, await patientSecrets.open(pc, row), locations, meta.now), document: await present(pc, doc, names) };
  });
}

async function present(pc: PracticeCrypto, r: DocumentRow, names: Map<string, string>): Promise<DocumentView> {
  return {
    id: r.id,
    kind: r.kind,
    title: (await documentSecrets.open(pc, r)).title ?? '',
    contentType: r.content_type,
    isImage: r.content_type.startsWith('image/'),
    width: r.width,
    height: r.height,
    byteSize: r.byte_size,
    createdAt: r.created_at,
    uploadedBy: r.uploaded_by ? (names.get(r.uploaded_by) ?? 'unknown user') : 'the patient, through a link',
  };
}

/** Saves the blobs and the row of an accepted upload (one writer for staff and patient uploads). Returns the file id. */
async function storeDocument(pc: PracticeCrypto, files: FileStore, row: { id: string; patient_id: string; kind: DocumentKind; title: string | null; uploaded_by: string | null; uploaded_via_link: string | null }, file: Accepted): Promise<string> {
  const main = await saveFile(pc, files, Readable.from([file.data]));
  const thumb = file.thumb ? await saveFile(pc, files, Readable.from([file.thumb])) : undefined;
  await insertDocument(pc.trx, {
    id: row.id,
    practice_id: pc.practiceId,
    patient_id: row.patient_id,
    kind: row.kind,
    content_type: file.contentType,
    file_id: main.id,
    thumb_file_id: thumb?.id ?? null,
    width: file.width ?? null,
    height: file.height ?? null,
    byte_size: file.data.length,
    uploaded_by: row.uploaded_by,
    uploaded_via_link: row.uploaded_via_link,
    ...(await documentSecrets.seal(pc, row.id, { title: row.title })),
  });
  return main.id;
}

/**
 * SECURITY: a file store that cannot write (full, read-only, no permission) is an installation
 * alert; the caller tells the user nothing was saved (the transaction rolled back, and a blob
 * written before the failure is removed after the rollback).
 */
async function storing<T>(d: DocumentDeps, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof StorageError) await raiseInstallationAlert(d.db, { kind: 'storage_failed', severity: 'critical' }).catch(() => undefined);
    throw err;
  }
}

/** Stores an accepted upload (already sniffed and re-encoded) for a patient. Returns the document id. */
export async function uploadDocument(d: DocumentDeps, actor: StaffActor, patientId: string, input: { kind: DocumentKind; title: string | null }, file: Accepted, meta: Meta): Promise<string> {
  return storing(d, () => staffWork(d.db, actor, async (trx) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.uploadDocument', record, meta.now) && uploadableKinds(actor).includes(input.kind), { resource: { type: 'patient', id: patientId }, patientId, permission: 'documents.upload' });
    const id = randomUUID();
    const fileId = await storeDocument(new PracticeCrypto(d.keyring, trx, actor.practiceId), d.files, { id, patient_id: patientId, kind: input.kind, title: input.title, uploaded_by: actor.id, uploaded_via_link: null }, file);
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'upload', resource: { type: 'document', id }, patientId, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId, details: { file_id: fileId } });
    return id;
  }));
}

/** What a patient may upload through a link, and how it is filed. */
export const PATIENT_UPLOADS = {
  card_front: { kind: 'insurance_card', title: 'Insurance card (front)' },
  card_back: { kind: 'insurance_card', title: 'Insurance card (back)' },
  photo_id: { kind: 'photo_id', title: 'Photo ID (driver’s license or passport)' },
  photo: { kind: 'other', title: 'Photo from the patient' },
} as const satisfies Record<string, { kind: DocumentKind; title: string }>;
export type PatientUploadSlot = keyof typeof PATIENT_UPLOADS;

/** A patient's upload through an uploads link (same pipeline, same encrypted store), audited as the link. */
export async function uploadByLink(d: DocumentDeps, link: LinkSession, slot: PatientUploadSlot, file: Accepted, meta: Meta): Promise<void> {
  if (!link.tasks.includes('uploads')) throw new AccessDenied({ resource: { type: 'document' } });
  await storing(d, () => linkWork(d, link, async (trx, pc) => {
    const id = randomUUID();
    const fileId = await storeDocument(pc, d.files, { id, patient_id: link.patientId, kind: PATIENT_UPLOADS[slot].kind, title: PATIENT_UPLOADS[slot].title, uploaded_by: null, uploaded_via_link: link.linkId }, file);
    await audit.record(trx, linkEvent(link, meta, { action: 'upload', resource: { type: 'document', id }, outcome: 'allowed', details: { file_id: fileId } }));
  }));
}

/** The titles and times of what this link has uploaded (the patient sees their own uploads listed, not shown). */
export async function linkUploads(d: DocumentDeps, link: LinkSession): Promise<{ title: string; createdAt: Date }[]> {
  if (!link.tasks.includes('uploads')) return [];
  return linkWork(d, link, async (trx, pc) => {
    const out: { title: string; createdAt: Date }[] = [];
    for (const r of await linkDocuments(trx, link.linkId)) out.push({ title: (await documentSecrets.open(pc, r)).title ?? '', createdAt: r.created_at });
    return out;
  });
}

export interface DocumentContent {
  data: Buffer;
  contentType: string;
  filename: string;
  patientId: string;
}

/**
 * One variant of a document (thumbnail, view, original). SECURITY: the view or download is
 * audited in the same transaction, before the bytes are returned.
 */
export async function readDocument(d: DocumentDeps, actor: StaffActor, docId: string, variant: Variant, meta: Meta): Promise<DocumentContent> {
  return staffWork(d.db, actor, async (trx) => {
    const doc = await findDocument(trx, docId);
    if (!doc || !doc.file_id) throw new AccessDenied({ resource: { type: 'document', id: docId } });
    const { record } = await loadPatientRecord(trx, actor, doc.patient_id, meta.now);
    ensure(authorize(actor, 'patient.viewDocument', record, meta.now, doc.kind), { resource: { type: 'document', id: docId }, patientId: doc.patient_id, permission: 'documents.download' });
    const fileId = variant === 'thumb' && doc.thumb_file_id ? doc.thumb_file_id : doc.file_id;
    await audit.record(trx, {
      practiceId: actor.practiceId,
      actor: { kind: 'user', id: actor.id },
      action: variant === 'original' ? 'download' : 'view',
      resource: { type: 'document', id: docId },
      patientId: doc.patient_id,
      outcome: 'allowed',
      ip: meta.ip,
      requestId: meta.requestId,
      details: { file_id: fileId, ...(variant === 'original' ? { step_up: true } : {}) },
    });
    const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
    const data = await readFileFully(await openFile(pc, d.files, fileId));
    const contentType = variant === 'thumb' && doc.thumb_file_id ? 'image/webp' : doc.content_type;
    // SECURITY: a name chosen by the server: kind, date and id — never the client's file name.
    const filename = `${doc.kind}-${doc.created_at.toISOString().slice(0, 10)}-${doc.id.slice(0, 8)}${variant === 'thumb' ? '-thumb' : ''}.${EXTENSIONS[contentType] ?? 'bin'}`;
    return { data, contentType, filename, patientId: doc.patient_id };
  });
}

/** Deletes a document: the row stays (audit trail) without its files; the blobs are removed after commit. */
export async function deleteDocument(d: DocumentDeps, actor: StaffActor, docId: string, meta: Meta): Promise<string> {
  const { patientId, blobs } = await staffWork(d.db, actor, async (trx) => {
    const doc = await findDocument(trx, docId);
    if (!doc) throw new AccessDenied({ resource: { type: 'document', id: docId } });
    const { record } = await loadPatientRecord(trx, actor, doc.patient_id, meta.now);
    // Deleting needs both: the right to file documents, and the right to see this one.
    ensure(authorize(actor, 'patient.uploadDocument', record, meta.now) && authorize(actor, 'patient.viewDocument', record, meta.now, doc.kind), { resource: { type: 'document', id: docId }, patientId: doc.patient_id, permission: 'documents.upload' });
    const fileIds = [doc.file_id, doc.thumb_file_id].filter((x): x is string => Boolean(x));
    const names = await objectNames(trx, fileIds);
    await markDocumentDeleted(trx, docId, actor.id, meta.now);
    await deleteStoredFiles(trx, fileIds);
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'delete', resource: { type: 'document', id: docId }, patientId: doc.patient_id, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId });
    return { patientId: doc.patient_id, blobs: names };
  });
  // After commit: a rollback above keeps the blobs with their rows.
  await Promise.all(blobs.map((b) => d.files.delete(b)));
  return patientId;
}
