import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import type { DateFormat } from '../../presenters/format.js';
import { checkAnswers, DEFAULT_FORMS, formDefinition, type Answers, type FormDefinition } from '../../forms/definition.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { presentSummary, type PatientSummaryView } from '../../presenters/patient.presenter.js';
import {
  findSubmission,
  findTemplate,
  findTemplates,
  findVersion,
  insertSubmission,
  insertTemplate,
  insertVersion,
  listSubmissions,
  listTemplates,
  markReviewed,
  setTemplateArchived,
  submissionSecrets,
  submittedTemplateIds,
  type TemplateRow,
} from '../../queries/forms.queries.js';
import { patientSecrets } from '../../queries/patients.queries.js';
import { listLocations } from '../../queries/practices.queries.js';
import { listUsers } from '../../queries/users.queries.js';
import type { Signer } from '../../validation/signature.schema.js';
import { linkEvent, linkWork, type LinkSession } from '../links/link-work.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { staffCryptoWork, staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';

/**
 * Intake and consent forms. Templates belong to the practice and change by new versions only;
 * patients fill the forms their link names and sign; a submission (answers and signer, encrypted)
 * is bound to the version it answered and hashed, and stays as submitted. Staff with forms.review
 * list, read, print and mark submissions reviewed — every read audited.
 */

export interface FormsDeps {
  db: Db;
  keyring: Keyring;
}

/** Gives a practice the default forms it lacks (by key). Idempotent; runs inside withPractice. */
export async function ensureDefaultForms(trx: Knex.Transaction, practiceId: string): Promise<void> {
  for (const form of DEFAULT_FORMS) {
    const id = randomUUID();
    if (await insertTemplate(trx, { id, practice_id: practiceId, key: form.key })) {
      await insertVersion(trx, { id: randomUUID(), practice_id: practiceId, template_id: id, version: 1, definition: form.definition, created_by: null });
    }
  }
}

export interface TemplateView {
  id: string;
  key: string;
  title: string;
  version: number;
  archived: boolean;
  updatedAt: Date;
  definition: FormDefinition;
}

const templateView = (t: TemplateRow): TemplateView => ({ id: t.id, key: t.key, title: t.definition.title, version: t.version, archived: t.archived_at !== null, updatedAt: t.created_at, definition: t.definition });

/** The practice's templates (no patient data: not a PHI read). */
export async function formTemplates(db: Db, actor: StaffActor): Promise<TemplateView[]> {
  ensure(authorize(actor, 'practice.listForms'), { permission: 'settings.manage' });
  return work(db, actor, async (trx) => (await listTemplates(trx)).map(templateView));
}

export async function formTemplate(db: Db, actor: StaffActor, id: string): Promise<TemplateView> {
  ensure(authorize(actor, 'practice.editForms'), { permission: 'settings.manage', resource: { type: 'form_template', id } });
  return work(db, actor, async (trx) => {
    const t = await findTemplate(trx, id);
    if (!t) throw new AccessDenied({ resource: { type: 'form_template', id } });
    return templateView(t);
  });
}

/** Saves an edit as the next version (or a new template when `id` is undefined). */
export async function saveFormTemplate(db: Db, actor: StaffActor, id: string | undefined, input: { definition: FormDefinition; archived: boolean }, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.editForms'), { permission: 'settings.manage', resource: { type: 'form_template', ...(id ? { id } : {}) } });
  const def = formDefinition.safeParse(input.definition);
  if (!def.success) {
    // The definition's own checks name their part: the title, the notice, or a field line.
    const part = String(def.error.issues[0]?.path[0] ?? '');
    return { ok: false, error: def.error.issues[0]?.message ?? 'Check the form.', ...(part === 'title' || part === 'notice' ? { field: part } : part === 'fields' ? { field: 'fields' } : {}) };
  }
  return work(db, actor, async (trx) => {
    let templateId = id;
    let version = 1;
    if (templateId) {
      const current = await findTemplate(trx, templateId);
      if (!current) throw new AccessDenied({ resource: { type: 'form_template', id: templateId } });
      version = current.version + 1;
      if ((current.archived_at !== null) !== input.archived) await setTemplateArchived(trx, templateId, input.archived ? meta.now : null);
    } else {
      templateId = randomUUID();
      const key = `custom_${templateId.slice(0, 8)}`;
      await insertTemplate(trx, { id: templateId, practice_id: actor.practiceId, key });
    }
    await insertVersion(trx, { id: randomUUID(), practice_id: actor.practiceId, template_id: templateId, version, definition: def.data, created_by: actor.id });
    await audit.record(trx, event(actor, meta, { action: 'form_template_change', resource: { type: 'form_template', id: templateId }, outcome: 'allowed', details: { version } }));
    return { ok: true, value: templateId };
  });
}

// ---- The patient's side ---------------------------------------------------------------------

export interface LinkFormItem {
  templateId: string;
  title: string;
  done: boolean;
}

/** The forms this link asks for, and which are done. */
export async function linkForms(d: FormsDeps, link: LinkSession): Promise<LinkFormItem[]> {
  if (!link.tasks.includes('intake_forms')) return [];
  return linkWork(d, link, async (trx) => {
    const done = await submittedTemplateIds(trx, link.linkId);
    return (await findTemplates(trx, link.formTemplateIds)).map((t) => ({ templateId: t.id, title: t.definition.title, done: done.has(t.id) }));
  });
}

/** SECURITY: a form this link names and has not answered yet; anything else is not found. */
async function openForm(trx: Knex.Transaction, link: LinkSession, templateId: string): Promise<TemplateRow | { done: true }> {
  if (!link.tasks.includes('intake_forms') || !link.formTemplateIds.includes(templateId)) throw new AccessDenied({ resource: { type: 'form_template', id: templateId } });
  const t = await findTemplate(trx, templateId);
  if (!t) throw new AccessDenied({ resource: { type: 'form_template', id: templateId } });
  return (await submittedTemplateIds(trx, link.linkId)).has(templateId) ? { done: true } : t;
}

export async function formForLink(d: FormsDeps, link: LinkSession, templateId: string): Promise<{ definition: FormDefinition; versionId: string } | { done: true }> {
  return linkWork(d, link, async (trx) => {
    const t = await openForm(trx, link, templateId);
    return 'done' in t ? t : { definition: t.definition, versionId: t.version_id };
  });
}

export type SubmitResult = { ok: true } | { ok: false; errors: Record<string, string>; error?: string } | { ok: false; done: true };

/**
 * A patient's answers to one form, signed. The answers are checked against the version the
 * patient saw (the form posts its version id; a template edited in between asks them to reload).
 */
export async function submitForm(
  d: FormsDeps,
  link: LinkSession,
  templateId: string,
  input: { versionId: string; body: Record<string, unknown>; signer: Signer; userAgent: string; dateFormat?: DateFormat },
  meta: Meta,
): Promise<SubmitResult> {
  return linkWork(d, link, async (trx, pc) => {
    const t = await openForm(trx, link, templateId);
    if ('done' in t) return { ok: false, done: true };
    if (t.version_id !== input.versionId) return { ok: false, errors: {}, error: 'The office has just updated this form. Please check the answers below and submit again.' };
    const checked = checkAnswers(t.definition, input.body, input.dateFormat);
    if (!checked.ok) return { ok: false, errors: checked.errors, error: 'Some answers need attention.' };
    const id = randomUUID();
    const content = { answers: checked.answers, signer: input.signer };
    // The hash covers exactly what was signed, in the form's field order (format 1).
    const signed = [1, t.version_id, link.patientId, meta.now.toISOString(), t.definition.fields.map((f) => [f.name, checked.answers[f.name] ?? null]), [input.signer.fullName, input.signer.signature, input.signer.drawing]];
    const hash = createHash('sha256').update(JSON.stringify(signed), 'utf8').digest('hex');
    await insertSubmission(trx, {
      id,
      practice_id: link.practiceId,
      patient_id: link.patientId,
      template_version_id: t.version_id,
      link_id: link.linkId,
      content_hash: hash,
      submitted_at: meta.now,
      client_ip: meta.ip,
      user_agent: input.userAgent.slice(0, 400),
      ...(await submissionSecrets.seal(pc, id, { content })),
    });
    await audit.record(trx, linkEvent(link, meta, { action: 'submit', resource: { type: 'form_submission', id }, outcome: 'allowed', details: { version: t.version } }));
    return { ok: true };
  });
}

// ---- The staff side -------------------------------------------------------------------------

export interface SubmissionListItem {
  id: string;
  title: string;
  version: number;
  submittedAt: Date;
  reviewed: boolean;
}

export async function patientSubmissions(d: FormsDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<{ patient: PatientSummaryView; submissions: SubmissionListItem[] }> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.reviewForms', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'forms.review' });
    const rows = await listSubmissions(trx, patientId);
    await audit.record(trx, event(actor, meta, { action: 'list', resource: { type: 'form_submission' }, patientId, outcome: 'allowed', details: { count: rows.length } }));
    const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
    return {
      patient: presentSummary(row, await patientSecrets.open(pc, row), locations),
      submissions: rows.map((r) => ({ id: r.id, title: r.definition.title, version: r.version, submittedAt: r.submitted_at, reviewed: r.reviewed_at !== null })),
    };
  });
}

export interface SubmissionView {
  id: string;
  patientId: string;
  patient: PatientSummaryView;
  definition: FormDefinition;
  version: number;
  answers: Answers;
  signer: Signer;
  contentHash: string;
  submittedAt: Date;
  clientIp: string | null;
  userAgent: string | null;
  reviewedBy: string | null;
  reviewedAt: Date | null;
}

/** One submission, for the screen or for printing. SECURITY: audited (view or print) before it is returned. */
export async function readSubmission(d: FormsDeps, actor: StaffActor, id: string, purpose: 'view' | 'print', meta: Meta): Promise<SubmissionView> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const s = await findSubmission(trx, id);
    if (!s) throw new AccessDenied({ resource: { type: 'form_submission', id } });
    const { row, record } = await loadPatientRecord(trx, actor, s.patient_id, meta.now);
    ensure(authorize(actor, 'patient.reviewForms', record, meta.now), { resource: { type: 'form_submission', id }, patientId: s.patient_id, permission: 'forms.review' });
    const version = await findVersion(trx, s.template_version_id);
    if (!version) throw new Error('submission without its template version');
    await audit.record(trx, event(actor, meta, { action: purpose, resource: { type: 'form_submission', id }, patientId: s.patient_id, outcome: 'allowed', ...(purpose === 'print' ? { details: { format: 'html' } } : {}) }));
    const { content } = await submissionSecrets.open(pc, s);
    const { answers, signer } = content as { answers: Answers; signer: Signer };
    const names = new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
    const locations = new Map((await listLocations(trx)).map((l) => [l.id, l.name]));
    return {
      id: s.id,
      patientId: s.patient_id,
      patient: presentSummary(row, await patientSecrets.open(pc, row), locations),
      definition: version.definition,
      version: version.version,
      answers,
      signer,
      contentHash: s.content_hash,
      submittedAt: s.submitted_at,
      clientIp: s.client_ip,
      userAgent: s.user_agent,
      reviewedBy: s.reviewed_by ? (names.get(s.reviewed_by) ?? 'unknown user') : null,
      reviewedAt: s.reviewed_at,
    };
  });
}

/** Marks a submission reviewed (once; later clicks change nothing). */
export async function reviewSubmission(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<void> {
  await work(db, actor, async (trx) => {
    const s = await findSubmission(trx, id);
    if (!s) throw new AccessDenied({ resource: { type: 'form_submission', id } });
    const { record } = await loadPatientRecord(trx, actor, s.patient_id, meta.now);
    ensure(authorize(actor, 'patient.reviewForms', record, meta.now), { resource: { type: 'form_submission', id }, patientId: s.patient_id, permission: 'forms.review' });
    if ((await markReviewed(trx, id, actor.id, meta.now)) > 0) {
      await audit.record(trx, event(actor, meta, { action: 'review', resource: { type: 'form_submission', id }, patientId: s.patient_id, outcome: 'allowed' }));
    }
  });
}
