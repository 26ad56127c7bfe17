import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { fieldErrors, form } from '../validation/text.js';
import type { Clock } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import { formForLink, linkForms, submitForm } from '../services/forms/forms.service.js';
import type { LinkSession } from '../services/links/link-work.js';
import { linkUploads, PATIENT_UPLOADS, uploadByLink, type PatientUploadSlot } from '../services/patients/documents.service.js';
import { decideByLink, linkPlanStatus, planForLink } from '../services/patients/plans.service.js';
import type { FileStore } from '../storage/file-store.js';
import { uploadErrorMessage } from '../uploads/multipart.js';
import { StorageError } from '../storage/file-store.js';
import { processUpload, UploadRefused } from '../uploads/pipeline.js';
import { signerErrors, signerFields, signerOf } from '../validation/signature.schema.js';
import { checkAnswers } from '../forms/definition.js';
import { plainLanguage } from '../presenters/cdt.js';
import { idOf, requestMeta, sendDownload } from './request.js';
import { accessReportForLink, linkAmendmentPage, requestAmendmentByLink } from '../services/rights/rights.service.js';
import { linkExportState, openLinkExportArchive, startLinkExport } from '../services/exports/exports.service.js';
import { linkAmendmentForm } from '../validation/rights.schema.js';

export interface PortalControllerDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
  clock: Clock;
}

const decisionForm = form({
  decision: z.enum(['accepted', 'declined'], 'Choose accept or decline.'),
  // The content hash of the plan as the page showed it: a plan changed since is not decided blind.
  planHash: z.string().regex(/^[0-9a-f]{64}$/, 'Reload the page and review the plan again.'),
  ...signerFields,
});
const formSubmission = form({ versionId: z.uuid('Reload the page and try again.'), ...signerFields });
const uploadForm = form({ slot: z.enum(Object.keys(PATIENT_UPLOADS) as [PatientUploadSlot, ...PatientUploadSlot[]], 'Choose what you are uploading.') });
const templateParams = z.object({ id: z.uuid() });


/**
 * The patient's pages behind a verified link: a list of the link's tasks, the plan (accept or
 * decline and sign), each form (fill and sign), and uploads (insurance card, photos). Each route's
 * marker checks the link carries the task; services check the record belongs to the link.
 */
export function portalController(d: PortalControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const linkOf = (res: Response): LinkSession => {
    const link = res.locals.patientLink;
    if (!link) throw new Error('route has no patient link marker');
    return link;
  };
  const templateId = (req: Request): string => {
    const p = templateParams.safeParse(req.params);
    if (!p.success) throw new AccessDenied({ resource: { type: 'form_template' } });
    return p.data.id;
  };
  const uploadsPage = async (res: Response, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string } = {}) =>
    res.status(status).render('portal/uploads', { title: 'Upload', uploads: await linkUploads(d, linkOf(res)), slots: PATIENT_UPLOADS, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: undefined, ...extra });
  /** An upload problem, beside the field it is about (the photo, or what it is). */
  const uploadProblem = (res: Response, status: number, field: 'file' | 'slot', message: string) => uploadsPage(res, status, { errors: { [field]: message }, error: 'Nothing was uploaded.' });
  const planPage = async (req: Request, res: Response, status: number, extra: { error?: string; notice?: string; errors?: Record<string, string>; values?: Record<string, unknown> } = {}) =>
    res.status(status).render('portal/plan', { title: 'Your treatment plan', plan: await planForLink(d, linkOf(res), meta(req)), plainLanguage, csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, errors: {}, values: {}, ...extra });

  const amendmentsPage = async (req: Request, res: Response, status: number, extra: { error?: string; notice?: string; errors?: Record<string, string>; values?: Record<string, string> } = {}) =>
    res.status(status).render('portal/amendments', { title: 'Ask for a correction', page: await linkAmendmentPage(d, linkOf(res), meta(req)), csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, errors: {}, values: { target: '', change: '' }, ...extra });

  return {
    /** GET /portal — what this link is for, and what is done. */
    home: (async (_req, res) => {
      const link = linkOf(res);
      res.render('portal/home', { title: 'Your dental office', tasks: link.tasks, planStatus: await linkPlanStatus(d, link), forms: await linkForms(d, link), uploads: await linkUploads(d, link), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /portal/access — who saw my record (the last year), from the audit log; reading it is audited. */
    accessReport: (async (req, res) => {
      const lines = await accessReportForLink(d, linkOf(res), meta(req));
      res.render('portal/access', { title: 'Who saw your record', lines, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /portal/records — "Download your records": start a copy, follow it, download it. */
    records: (async (_req, res) => {
      const e = await linkExportState(d, linkOf(res));
      res.render('portal/records', { title: 'Your records', e, passphrase: undefined, error: undefined, refreshSeconds: e && (e.status === 'queued' || e.status === 'running') ? 10 : undefined, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /portal/records — start the copy; the passphrase is shown once, on this response. */
    startRecords: (async (req, res) => {
      const result = await startLinkExport(d, linkOf(res), meta(req));
      const e = await linkExportState(d, linkOf(res));
      if (!result.ok) return res.status(409).render('portal/records', { title: 'Your records', e, passphrase: undefined, error: result.error, refreshSeconds: undefined, csrfToken: res.locals.csrfToken });
      res.render('portal/records', { title: 'Your records', e, passphrase: result.value.passphrase, error: undefined, refreshSeconds: undefined, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /portal/records/:id/download — the encrypted copy (audited as the link; a disclosure to the patient). */
    downloadRecords: (async (req, res) => {
      const opened = await openLinkExportArchive(d, linkOf(res), idOf(req, 'export'), meta(req));
      if (!opened) return res.redirect(303, '/portal/records');
      sendDownload(res, { ...opened, contentType: 'application/zip' });
    }) satisfies RequestHandler,

    /** GET /portal/amendments — "Ask for a correction": the parts of the record, and what was asked before. */
    amendments: (async (req, res) => amendmentsPage(req, res, 200, req.query.sent === '1' ? { notice: 'Sent. The office must answer within 60 days; you will hear from them.' } : {})) satisfies RequestHandler,

    /** POST /portal/amendments */
    requestAmendment: (async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const values = { target: typeof body.target === 'string' ? body.target.slice(0, 80) : '', change: typeof body.change === 'string' ? body.change.slice(0, 4000) : '' };
      const parsed = linkAmendmentForm.safeParse(body);
      if (!parsed.success) return amendmentsPage(req, res, 400, { error: 'Check the answers marked below.', errors: fieldErrors(parsed.error), values });
      const result = await requestAmendmentByLink(d, linkOf(res), { ...parsed.data.target, change: parsed.data.change }, meta(req));
      if (!result.ok) return amendmentsPage(req, res, 400, { error: result.error, errors: result.field ? { [result.field]: result.error } : {}, values });
      res.redirect(303, '/portal/amendments?sent=1');
    }) satisfies RequestHandler,

    /** GET /portal/plan */
    plan: (async (req, res) => planPage(req, res, 200, req.query.done === '1' ? { notice: 'Thank you. Your decision is recorded and the office has it.' } : {})) satisfies RequestHandler,

    /** POST /portal/decision — accept or decline, with the typed full name and a drawn or typed signature. */
    decide: (async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const values = { decision: body.decision, fullName: body.fullName, signature: body.signature };
      const form = decisionForm.safeParse(body);
      if (!form.success) {
        // Every problem at once, each beside its field.
        const errors: Record<string, string> = { ...signerErrors(form.error), ...(form.error.issues.some((i) => i.path[0] === 'decision') ? { decision: 'Choose accept or decline.' } : {}) };
        if (!errors.signature && !errors.fullName && typeof body.signature === 'string' && body.signature.trim() === '' && (typeof body.drawing !== 'string' || body.drawing === '')) errors.signature = 'Sign by drawing in the box or by typing your signature.';
        return planPage(req, res, 400, { error: 'Check the answers marked below.', errors, values });
      }
      const signer = await signerOf(form.data);
      if (!signer.ok) return planPage(req, res, 400, { error: signer.error, errors: { [signer.field]: signer.error }, values });
      const result = await decideByLink(d, linkOf(res), { decision: form.data.decision, shownHash: form.data.planHash, signer: signer.signer, userAgent: req.get('user-agent') ?? '' }, meta(req));
      if (!result.ok) return planPage(req, res, 409, { error: result.error });
      res.redirect(303, '/portal/plan?done=1');
    }) satisfies RequestHandler,

    /** GET /portal/forms/:id */
    showForm: (async (req, res) => {
      const id = templateId(req);
      const form = await formForLink(d, linkOf(res), id);
      if ('done' in form) return res.redirect(303, '/portal');
      res.render('portal/form', { title: form.definition.title, templateId: id, form, values: {}, errors: {}, csrfToken: res.locals.csrfToken, error: undefined });
    }) satisfies RequestHandler,

    /** POST /portal/forms/:id — answers and signature. */
    submitForm: (async (req, res) => {
      const link = linkOf(res);
      const id = templateId(req);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const again = async (status: number, error: string, errors: Record<string, string> = {}) => {
        const form = await formForLink(d, link, id);
        if ('done' in form) return res.redirect(303, '/portal');
        // Every problem at once: the answers' as well as the signature's, each beside its field.
        const answers = checkAnswers(form.definition, body, res.locals.fmt.format);
        const all = { ...(answers.ok ? {} : answers.errors), ...errors };
        res.status(status).render('portal/form', { title: form.definition.title, templateId: id, form, values: body, errors: all, csrfToken: res.locals.csrfToken, error });
      };
      const parsed = formSubmission.safeParse(body);
      if (!parsed.success) {
        const errors = signerErrors(parsed.error);
        return again(400, Object.keys(errors).length ? 'Check the answers marked below.' : (parsed.error.issues[0]?.message ?? 'Check the form.'), errors);
      }
      const signer = await signerOf(parsed.data);
      if (!signer.ok) return again(400, 'Check the answers marked below.', { [signer.field]: signer.error });
      const result = await submitForm(d, link, id, { versionId: parsed.data.versionId, body, signer: signer.signer, userAgent: req.get('user-agent') ?? '', dateFormat: res.locals.fmt.format }, meta(req));
      if (result.ok || 'done' in result) return res.redirect(303, '/portal?submitted=1');
      await again(result.error?.startsWith('The office has just updated') ? 409 : 400, result.error ?? 'Some answers need attention.', result.errors);
    }) satisfies RequestHandler,

    /** GET /portal/uploads */
    showUploads: (async (req, res) => uploadsPage(res, 200, req.query.done === '1' ? { notice: 'Uploaded. Thank you.' } : {})) satisfies RequestHandler,

    /** POST /portal/uploads — multipart (parsed under limits before the CSRF check), then the upload pipeline. */
    upload: (async (req, res) => {
      if (res.locals.uploadError) return uploadProblem(res, res.locals.uploadError, 'file', uploadErrorMessage(res.locals.uploadError));
      const form = uploadForm.safeParse(req.body ?? {});
      if (!form.success) return uploadProblem(res, 400, 'slot', form.error.issues[0]?.message ?? 'Choose what you are uploading.');
      if (!req.file) return uploadProblem(res, 400, 'file', 'Choose a photo to upload.');
      try {
        const accepted = await processUpload(req.file.buffer, req.file.originalname);
        if (!accepted.contentType.startsWith('image/')) return uploadProblem(res, 415, 'file', 'Upload a photo (JPEG, PNG or WebP).');
        await uploadByLink(d, linkOf(res), form.data.slot, accepted, meta(req));
      } catch (err) {
        if (err instanceof UploadRefused) return uploadProblem(res, err.status, 'file', err.message);
        if (err instanceof StorageError) {
          req.log.error({ code: err.code }, 'file store could not write; upload refused');
          return uploadsPage(res, 503, { error: 'Your photo could not be stored; nothing was saved. Please try again later, or call the office.' });
        }
        throw err;
      }
      res.redirect(303, '/portal/uploads?done=1');
    }) satisfies RequestHandler,
  };
}
