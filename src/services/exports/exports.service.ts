import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import { openFile, openFileDetached, saveFile } from '../../crypto/encrypted-files.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { writeEncryptedZip, type ArchiveEntry } from '../../export/archive.js';
import {
  auditResource,
  coverageResource,
  documentPath,
  documentResource,
  formResources,
  linkResource,
  noteResource,
  patientAmendmentResource,
  patientResource,
  planDecisionResource,
  planResource,
  RESOURCE_TYPES,
  type FormDefinitionLike,
  type PatientValues,
  type PlanItemContent,
  type Resource,
} from '../../export/fhir.js';
import { exportIndexHtml, type IndexFile } from '../../export/index-page.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { documentSecrets, deleteStoredFiles, objectNames } from '../../queries/documents.queries.js';
import {
  countExportPatients,
  deleteExportParts,
  expiredExports,
  exportAmendments,
  exportAuditBatch,
  exportDecisions,
  exportDocuments,
  exportLinks,
  exportNotes,
  exportParts,
  exportPatientBatch,
  exportPlanItems,
  exportPlans,
  exportSecrets,
  exportStaffNames,
  exportSubmissions,
  findExport,
  insertExport,
  insertExportPart,
  linkExports,
  listExports,
  lockExport,
  openExports,
  updateExport,
  type ExportRow,
} from '../../queries/exports.queries.js';
import { amendmentSecrets, noteSecrets } from '../../queries/notes.queries.js';
import { patientSecrets, type PatientRow } from '../../queries/patients.queries.js';
import { decisionSecrets, planItemSecrets, planSecrets } from '../../queries/plans.queries.js';
import { submissionSecrets } from '../../queries/forms.queries.js';
import { findCurrentPractice } from '../../queries/practices.queries.js';
import type { FileStore } from '../../storage/file-store.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { staffEvent, staffWork } from '../staff-work.js';
import { linkEvent, linkWork, type LinkSession } from '../links/link-work.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { amendmentViews, writeDisclosure } from '../rights/rights.service.js';

/**
 * The practice's machine-readable export (docs/EXPORT.md): FHIR R4 NDJSON, the documents' files and
 * a readable index.html in a zip encrypted with a passphrase shown once. The owner starts it; the
 * `export` job builds it a batch at a time, each batch one transaction that moves the cursor, so a
 * restart resumes where it stopped; every patient exported is audited (and counts towards the
 * requester's export volume). Single-patient export runs the same code with one patient.
 */

export interface ExportDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
}

/** Patients per batch (one transaction each); audit events per batch. */
export const PATIENT_BATCH = 25;
export const AUDIT_BATCH = 2000;
/** How long a finished archive stays downloadable. */
export const ARCHIVE_DAYS = 7;

/** A passphrase of 100 random bits in five groups of four (Crockford's base32: no I, L, O, U). */
export function newPassphrase(): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  const bytes = randomBytes(20);
  const chars = [...bytes].map((b) => alphabet[b % 32]!).join('');
  return chars.match(/.{4}/g)!.join('-');
}

export interface ExportView {
  id: string;
  scope: 'practice' | 'patient';
  /** Asked for by staff, or by the patient through their link ("Download your records"). */
  requestedVia: ExportRow['requested_via'];
  status: ExportRow['status'];
  phase: ExportRow['phase'];
  total: number;
  done: number;
  percent: number;
  createdAt: Date;
  finishedAt: Date | null;
  expiresAt: Date | null;
  bytes: number | null;
  error: string | null;
}

function view(r: ExportRow): ExportView {
  // Patients are most of the work; the audit trail and the archive the last tenth.
  const percent = r.status === 'done' ? 100 : r.total === 0 ? (r.phase === 'patients' ? 0 : 90) : Math.min(99, Math.floor((r.done / r.total) * 90) + (r.phase === 'audit' ? 5 : r.phase === 'assemble' ? 9 : 0));
  return { id: r.id, scope: r.scope, requestedVia: r.requested_via, status: r.status, phase: r.phase, total: r.total, done: r.done, percent, createdAt: r.created_at, finishedAt: r.finished_at, expiresAt: r.expires_at, bytes: r.archive_bytes === null ? null : Number(r.archive_bytes), error: r.error };
}

/**
 * Starts an export (owner, `practice.export`, after step-up at the route). Returns the passphrase
 * once; it is kept encrypted only until the archive is written.
 */
export async function startExport(d: ExportDeps, actor: StaffActor, input: { patientId?: string }, meta: Meta): Promise<FormResult<{ exportId: string; passphrase: string }>> {
  ensure(authorize(actor, 'practice.exportData'), { permission: 'practice.export' });
  return staffWork(d.db, actor, async (trx) => {
    if (input.patientId) {
      const { record } = await loadPatientRecord(trx, actor, input.patientId, meta.now);
      ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id: input.patientId }, patientId: input.patientId });
    }
    // One staff export at a time (a patient's own download, asked through their link, does not count).
    const open = (await listExports(trx, 20)).find((e) => e.requested_via === 'staff' && (e.status === 'queued' || e.status === 'running'));
    if (open) return { ok: false, error: 'An export is already being prepared. Wait for it to finish (this page shows its progress), then start another.' };
    const id = randomUUID();
    const passphrase = newPassphrase();
    const total = await countExportPatients(trx, input.patientId ?? null);
    const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
    await insertExport(trx, { id, practice_id: actor.practiceId, requested_by: actor.id, requested_via: 'staff', scope: input.patientId ? 'patient' : 'practice', patient_id: input.patientId ?? null, total, ...(await exportSecrets.seal(pc, id, { passphrase })) } as never);
    await audit.record(trx, staffEvent(actor, meta, { action: 'create', resource: { type: 'export', id }, outcome: 'allowed', ...(input.patientId ? { patientId: input.patientId } : {}), details: { count: total, format: 'json', step_up: true } }));
    return { ok: true, value: { exportId: id, passphrase } };
  });
}

/** Whether the actor may export this patient (the confirmation page); AccessDenied if not. */
export async function checkPatientExport(d: ExportDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'practice.exportData'), { permission: 'practice.export' });
  await staffWork(d.db, actor, async (trx) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.show', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId });
  });
}

export async function exportsPage(d: ExportDeps, actor: StaffActor): Promise<ExportView[]> {
  ensure(authorize(actor, 'practice.exportData'), { permission: 'practice.export' });
  return staffWork(d.db, actor, async (trx) => (await listExports(trx, 20)).map(view));
}

export async function exportProgress(d: ExportDeps, actor: StaffActor, id: string): Promise<ExportView | undefined> {
  ensure(authorize(actor, 'practice.exportData'), { permission: 'practice.export' });
  return staffWork(d.db, actor, async (trx) => {
    const r = await findExport(trx, id);
    return r ? view(r) : undefined;
  });
}

/**
 * The finished archive as a stream (after step-up at the route). SECURITY: audited as a download
 * before the first byte, and counted towards the person's export volume.
 */
export async function openExportArchive(d: ExportDeps, actor: StaffActor, id: string, meta: Meta): Promise<{ stream: Readable; filename: string; bytes: number } | undefined> {
  ensure(authorize(actor, 'practice.exportData'), { permission: 'practice.export' });
  return staffWork(d.db, actor, async (trx) => {
    const r = await findExport(trx, id);
    if (!r) throw new AccessDenied({ resource: { type: 'export', id } });
    if (r.status !== 'done' || !r.archive_file_id || (r.expires_at && r.expires_at <= meta.now)) return undefined;
    await audit.record(trx, staffEvent(actor, meta, { action: 'download', resource: { type: 'export', id }, outcome: 'allowed', ...(r.patient_id ? { patientId: r.patient_id } : {}), details: { format: 'json', step_up: true } }));
    // A patient's records leaving the practice: a disclosure in that patient's accounting (§164.528).
    if (r.patient_id) {
      await writeDisclosure(trx, new PracticeCrypto(d.keyring, trx, actor.practiceId), {
        patientId: r.patient_id,
        disclosedAt: meta.now,
        purpose: 'records_export',
        recipient: { name: 'Copy of the record downloaded by the practice', address: null },
        description: 'The whole record exported (FHIR R4 and files), downloaded by the practice',
        recordedBy: actor.id,
        source: 'export',
        exportId: id,
      });
    }
    const practice = await findCurrentPractice(trx);
    // The key is fetched now; the bytes stream after the audit row has committed.
    const stream = await openFileDetached(new PracticeCrypto(d.keyring, trx, actor.practiceId), d.files, r.archive_file_id);
    return { stream, filename: `enamel-export-${practice?.slug ?? 'practice'}-${r.created_at.toISOString().slice(0, 10)}${r.scope === 'patient' ? '-patient' : ''}.zip`, bytes: Number(r.archive_bytes ?? 0) };
  });
}

// --- The patient's own copy, through their link ("Download your records", §164.524) ----------

/** At most this many copies a day through one link: bounds the work a link can cause. */
const LINK_EXPORTS_PER_DAY = 3;

/**
 * The patient starts a copy of their own record (after the date-of-birth check): the same
 * single-patient export staff make, asked for by the link. Returns the passphrase once.
 */
export async function startLinkExport(d: ExportDeps, link: LinkSession, meta: Meta): Promise<FormResult<{ exportId: string; passphrase: string }>> {
  return linkWork(d, link, async (trx, pc) => {
    const mine = await linkExports(trx, link.linkId, 10);
    if (mine.some((e) => e.status === 'queued' || e.status === 'running')) return { ok: false, error: 'Your records are already being prepared. This page shows the download when they are ready.' };
    if (mine.filter((e) => e.created_at.getTime() > meta.now.getTime() - 86_400_000).length >= LINK_EXPORTS_PER_DAY) return { ok: false, error: 'You have made several copies today. Use the one you have, or try again tomorrow.' };
    const id = randomUUID();
    const passphrase = newPassphrase();
    await insertExport(trx, { id, practice_id: link.practiceId, requested_by: link.linkId, requested_via: 'patient_link', scope: 'patient', patient_id: link.patientId, total: 1, ...(await exportSecrets.seal(pc, id, { passphrase })) } as never);
    await audit.record(trx, linkEvent(link, meta, { action: 'create', resource: { type: 'export', id }, outcome: 'allowed', details: { count: 1, format: 'json' } }));
    return { ok: true, value: { exportId: id, passphrase } };
  });
}

/** The patient's latest copy (its progress, or the download), if they asked for one through this link. */
export async function linkExportState(d: ExportDeps, link: LinkSession): Promise<ExportView | undefined> {
  return linkWork(d, link, async (trx) => {
    const [latest] = await linkExports(trx, link.linkId, 1);
    return latest ? view(latest) : undefined;
  });
}

/**
 * The patient downloads their copy. SECURITY: only an export this link asked for; audited as the
 * link before the first byte, and recorded as a disclosure to the patient (§164.528 lets the
 * accounting leave it out; it is there when asked for).
 */
export async function openLinkExportArchive(d: ExportDeps, link: LinkSession, id: string, meta: Meta): Promise<{ stream: Readable; filename: string; bytes: number } | undefined> {
  return linkWork(d, link, async (trx, pc) => {
    const r = await findExport(trx, id);
    if (!r || r.requested_via !== 'patient_link' || r.requested_by !== link.linkId || r.patient_id !== link.patientId) throw new AccessDenied({ resource: { type: 'export', id } });
    if (r.status !== 'done' || !r.archive_file_id || (r.expires_at && r.expires_at <= meta.now)) return undefined;
    await audit.record(trx, linkEvent(link, meta, { action: 'download', resource: { type: 'export', id }, outcome: 'allowed', details: { format: 'json' } }));
    await writeDisclosure(trx, pc, {
      patientId: link.patientId,
      disclosedAt: meta.now,
      purpose: 'to_patient',
      recipient: { name: 'The patient (downloaded through their link)', address: null },
      description: 'A copy of the whole record (FHIR R4, a readable page and the files), downloaded by the patient',
      recordedBy: link.linkId,
      source: 'patient_link',
      exportId: id,
    });
    const practice = await findCurrentPractice(trx);
    const stream = await openFileDetached(pc, d.files, r.archive_file_id);
    return { stream, filename: `${practice?.slug ?? 'dental'}-my-records-${meta.now.toISOString().slice(0, 10)}.zip`, bytes: Number(r.archive_bytes ?? 0) };
  });
}

// --- The job's work ---------------------------------------------------------------------------

const ndjson = (resources: readonly Resource[]) => resources.map((r) => JSON.stringify(r)).join('\n') + (resources.length ? '\n' : '');

interface FileListLine {
  path: string;
  fileId: string;
  patientId: string;
  patient: string;
  kind: string;
  title: string | null;
  createdAt: string;
}

/** Everything one batch of patients produces, by resource type (plus the files to put in the archive). */
async function patientBatchResources(trx: Knex.Transaction, pc: PracticeCrypto, patients: PatientRow[], now: Date): Promise<{ byType: Map<string, Resource[]>; files: FileListLine[] }> {
  const byType = new Map<string, Resource[]>(RESOURCE_TYPES.map((t) => [t, []]));
  const add = (r: Resource | undefined) => r && byType.get(r.resourceType)!.push(r);
  const ids = patients.map((p) => p.id);
  const staff = new Map((await exportStaffNames(trx)).map((u) => [u.id, u.display_name]));
  const staffName = (id: unknown) => (typeof id === 'string' ? (staff.get(id) ?? 'Former staff member') : 'The practice');
  const names = new Map<string, string>();
  for (const p of patients) {
    const v = (await patientSecrets.open(pc, p)) as unknown as PatientValues;
    names.set(p.id, [v.given_name, v.family_name].filter(Boolean).join(' '));
    add(patientResource(p as never, v));
    add(coverageResource(p.id, v));
  }
  const notes = await exportNotes(trx, ids);
  for (const n of notes) add(noteResource(n as never, (await noteSecrets.open(pc, n)).body ?? '', staffName(n.author_id)));
  for (const a of await exportAmendments(trx, notes.map((n) => n.id))) {
    const note = notes.find((n) => n.id === a.note_id)!;
    add(noteResource({ id: a.id, created_at: a.created_at, patient_id: note.patient_id as string, status: 'signed', signed_at: a.created_at }, (await amendmentSecrets.open(pc, a)).body ?? '', staffName(a.author_id), note.id));
  }
  const plans = await exportPlans(trx, ids);
  const items = await exportPlanItems(trx, plans.map((p) => p.id));
  for (const p of plans) {
    const mine = [];
    for (const i of items.filter((x) => x.plan_id === p.id)) mine.push({ phase: i.phase, content: (await planItemSecrets.open(pc, i)).content as PlanItemContent });
    add(planResource(p as never, (await planSecrets.open(pc, p)).title ?? 'Treatment plan', mine, staffName(p.created_by)));
  }
  for (const dec of await exportDecisions(trx, plans.map((p) => p.id))) {
    const plan = plans.find((p) => p.id === dec.plan_id)!;
    add(planDecisionResource(dec as never, plan.patient_id as string, ((await decisionSecrets.open(pc, dec)).signer ?? {}) as { fullName?: string }));
  }
  for (const s of await exportSubmissions(trx, ids)) {
    const content = (await submissionSecrets.open(pc, s)).content as { answers: Record<string, string | boolean | null>; signer?: { fullName?: string } };
    for (const r of formResources(s as never, s.definition as FormDefinitionLike, content)) add(r);
  }
  const files: FileListLine[] = [];
  for (const doc of await exportDocuments(trx, ids)) {
    const title = (await documentSecrets.open(pc, doc)).title ?? null;
    add(documentResource(doc as never, title, undefined));
    if (typeof doc.file_id === 'string' && !doc.deleted_at) {
      files.push({ path: documentPath(doc as never), fileId: doc.file_id, patientId: doc.patient_id as string, patient: names.get(doc.patient_id as string) ?? '', kind: String(doc.kind), title, createdAt: new Date(doc.created_at as string).toISOString() });
    }
  }
  for (const l of await exportLinks(trx, ids)) add(linkResource(l as never, now));
  for (const a of await amendmentViews(trx, pc, ids)) {
    const patientId = a.targetType === 'demographics' ? a.targetId : (notes.find((n) => n.id === a.targetId)?.patient_id ?? plans.find((p) => p.id === a.targetId)?.patient_id);
    if (a.decision !== 'pending' && typeof patientId === 'string') add(patientAmendmentResource(a, patientId));
  }
  return { byType, files };
}

/** Saves a batch's resources as encrypted parts; returns how many lines each type got. */
async function saveParts(trx: Knex.Transaction, pc: PracticeCrypto, files: FileStore, e: ExportRow, batch: number, byType: Map<string, Resource[]>, fileList: FileListLine[]): Promise<void> {
  for (const [type, resources] of byType) {
    if (!resources.length) continue;
    const saved = await saveFile(pc, files, Readable.from([ndjson(resources)]));
    await insertExportPart(trx, { practice_id: e.practice_id, export_id: e.id, batch, resource_type: type, file_id: saved.id, lines: resources.length });
  }
  if (fileList.length) {
    const saved = await saveFile(pc, files, Readable.from([fileList.map((f) => JSON.stringify(f)).join('\n') + '\n']));
    await insertExportPart(trx, { practice_id: e.practice_id, export_id: e.id, batch, resource_type: 'FileList', file_id: saved.id, lines: fileList.length });
  }
}

/**
 * One step of one export, in one transaction: a batch of patients (each audited as exported by the
 * person who asked), or of audit events, or the archive. Returns whether more remains.
 */
export async function runExportStep(d: ExportDeps, practiceId: string, exportId: string, now: Date): Promise<{ more: boolean }> {
  let blobsToDelete: string[] = [];
  const result = await d.db.withPractice(practiceId, { kind: 'system', id: 'export' }, async (trx) => {
    const e = await lockExport(trx, exportId);
    if (!e) return { more: false };
    const pc = new PracticeCrypto(d.keyring, trx, practiceId);
    if (e.status === 'queued') await updateExport(trx, e.id, { status: 'running', started_at: now });
    if (e.phase === 'patients') {
      const patients = (await exportPatientBatch(trx, { after: e.cursor, limit: PATIENT_BATCH, patientId: e.patient_id })) as unknown as PatientRow[];
      if (!patients.length) {
        // The patient's own copy is their designated record set (§164.524): the audit trail, with
        // staff accounts and addresses, is not part of it — "Who saw my record" answers that.
        await updateExport(trx, e.id, { phase: e.requested_via === 'patient_link' ? 'assemble' : 'audit', cursor: null });
        return { more: true };
      }
      const { byType, files } = await patientBatchResources(trx, pc, patients, now);
      await saveParts(trx, pc, d.files, e, e.batches, byType, files);
      // SECURITY: every patient in the export is audited, as exported by the person who asked (export volume counts it).
      const requester = e.requested_via === 'patient_link' ? ({ kind: 'patient_link', id: e.requested_by } as const) : ({ kind: 'user', id: e.requested_by } as const);
      for (const p of patients) await audit.record(trx, { practiceId, actor: requester, action: 'export', resource: { type: 'export', id: e.id }, patientId: p.id, outcome: 'allowed', details: { format: 'json' } });
      await updateExport(trx, e.id, { done: e.done + patients.length, cursor: patients.at(-1)!.id, batches: e.batches + 1 });
      return { more: true };
    }
    if (e.phase === 'audit') {
      const events = await exportAuditBatch(trx, { afterId: e.cursor, limit: AUDIT_BATCH, patientId: e.patient_id });
      if (!events.length) {
        await updateExport(trx, e.id, { phase: 'assemble', cursor: null });
        return { more: true };
      }
      const staff = new Map((await exportStaffNames(trx)).map((u) => [u.id, u.display_name]));
      const resources = events.map((ev) => auditResource(ev as never, ev.actor_type === 'user' && typeof ev.actor_id === 'string' ? staff.get(ev.actor_id) : undefined));
      await saveParts(trx, pc, d.files, e, e.batches, new Map([['AuditEvent', resources]]), []);
      await updateExport(trx, e.id, { cursor: String(events.at(-1)!.id), batches: e.batches + 1 });
      return { more: true };
    }
    // The archive: every part, every file, the index — written encrypted, then the parts removed.
    const passphrase = (await exportSecrets.open(pc, e as never)).passphrase;
    if (!passphrase) throw new Error('export passphrase missing');
    const parts = await exportParts(trx, e.id);
    const practice = await findCurrentPractice(trx);
    const fileLines: FileListLine[] = [];
    for (const p of parts.filter((x) => x.resource_type === 'FileList')) {
      const text = (await readAll(await openFile(pc, d.files, p.file_id))).toString('utf8');
      for (const line of text.split('\n')) if (line) fileLines.push(JSON.parse(line) as FileListLine);
    }
    const counts = new Map<string, number>();
    for (const p of parts) if (p.resource_type !== 'FileList') counts.set(p.resource_type, (counts.get(p.resource_type) ?? 0) + p.lines);
    const sizes = new Map<string, number>();
    const entries = async function* (): AsyncGenerator<ArchiveEntry> {
      for (const type of RESOURCE_TYPES) {
        const mine = parts.filter((p) => p.resource_type === type);
        if (!mine.length) continue;
        yield { name: `${type}.ndjson`, source: () => concatenated(mine.map((p) => () => openFile(pc, d.files, p.file_id))) };
      }
      for (const f of fileLines) {
        yield {
          name: f.path,
          source: async () => {
            const s = await openFile(pc, d.files, f.fileId);
            let n = 0;
            s.on('data', (c: Buffer) => (n += c.length));
            s.on('end', () => sizes.set(f.path, n));
            return s;
          },
        };
      }
      const files: IndexFile[] = [
        ...RESOURCE_TYPES.filter((t) => counts.has(t)).map((t) => ({ path: `${t}.ndjson`, description: `${counts.get(t)!.toLocaleString('en-US')} ${t} resources (FHIR R4, one JSON per line)` })),
        ...fileLines.map((f) => ({ path: f.path, description: `${f.kind.replace(/_/g, ' ')}${f.title ? ` “${f.title}”` : ''} — ${f.patient}, ${f.createdAt.slice(0, 10)}`, bytes: sizes.get(f.path) })),
      ];
      yield { name: 'index.html', source: () => exportIndexHtml({ practiceName: practice?.name ?? 'Practice', createdAt: now, scope: e.scope, files }) };
    };
    const zipStream = new PassThrough();
    const writing = writeEncryptedZip(zipStream, entries(), passphrase);
    writing.catch((err: unknown) => zipStream.destroy(err as Error));
    const archive = await saveFile(pc, d.files, zipStream);
    await writing;
    const partFiles = await deleteExportParts(trx, e.id);
    blobsToDelete = await objectNames(trx, partFiles);
    await deleteStoredFiles(trx, partFiles);
    await updateExport(trx, e.id, { status: 'done', phase: 'finished', archive_file_id: archive.id, archive_bytes: String(archive.plaintextSize), passphrase: null, finished_at: now, expires_at: new Date(now.getTime() + ARCHIVE_DAYS * 86_400_000) });
    return { more: false };
  });
  // After commit: the parts' blobs (a rollback above keeps them with their rows).
  await Promise.all(blobsToDelete.map((b) => d.files.delete(b)));
  return result;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The parts of one NDJSON file, one after another, as one stream. */
function concatenated(opens: (() => Promise<Readable>)[]): Readable {
  return Readable.from(
    (async function* () {
      for (const open of opens) for await (const chunk of await open()) yield chunk as Buffer;
    })(),
  );
}

/** Marks an export failed (a step threw): the owner sees it and may start another. */
export async function failExport(d: ExportDeps, practiceId: string, exportId: string, now: Date): Promise<void> {
  await d.db.withPractice(practiceId, { kind: 'system', id: 'export' }, (trx) => updateExport(trx, exportId, { status: 'failed', error: 'build_failed', passphrase: null, finished_at: now }));
}

/** The job: works through every open export until the time budget is spent. Returns counts. */
export async function runOpenExports(d: ExportDeps, now: () => Date, budgetMs: number): Promise<{ steps: number; finished: number; failed: number }> {
  const deadline = Date.now() + budgetMs;
  let steps = 0;
  let finished = 0;
  let failed = 0;
  for (const { practice_id, id } of await openExports(d.db.knex)) {
    for (;;) {
      if (Date.now() > deadline) return { steps, finished, failed };
      try {
        const { more } = await runExportStep(d, practice_id, id, now());
        steps++;
        if (!more) {
          finished++;
          break;
        }
      } catch {
        failed++;
        await failExport(d, practice_id, id, now());
        break;
      }
    }
  }
  return { steps, finished, failed };
}

/** Finished archives a week old are removed (the row stays, as the record that an export was made). */
export async function expireExports(d: ExportDeps, practiceId: string, now: Date): Promise<number> {
  const blobs: string[] = [];
  const n = await d.db.withPractice(practiceId, { kind: 'system', id: 'export' }, async (trx) => {
    const expired = await expiredExports(trx, now);
    for (const x of expired) {
      const fileIds = x.archive_file_id ? [x.archive_file_id] : [];
      await updateExport(trx, x.id, { status: 'expired', archive_file_id: null });
      blobs.push(...(await objectNames(trx, fileIds)));
      await deleteStoredFiles(trx, fileIds);
    }
    return expired.length;
  });
  await Promise.all(blobs.map((b) => d.files.delete(b)));
  return n;
}

