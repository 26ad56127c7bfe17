import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { errorSummary, fieldErrors, form } from '../validation/text.js';
import { STEP_UP_MAX_AGE_MS } from '../auth/staff-auth.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import { DOCUMENT_KIND_LABELS } from '../documents/kinds.js';
import { DOCUMENT_KINDS, deleteDocument, documentsPage, documentViewer, readDocument, uploadableKinds, uploadDocument } from '../services/patients/documents.service.js';
import { StorageError, type FileStore } from '../storage/file-store.js';
import { STORAGE_FAILED_MESSAGE, uploadErrorMessage } from '../uploads/multipart.js';
import { processUpload, UploadRefused } from '../uploads/pipeline.js';
import { signFileUrl, verifyFileUrl, type Variant } from '../uploads/signed-urls.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface DocumentsControllerDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
  clock: Clock;
  fileUrlKey: Buffer;
}

const uploadForm = form({
  kind: z.enum(DOCUMENT_KINDS, 'Choose what kind of document this is.'),
  title: z.string().trim().max(200, 'Keep the title under 200 characters.').optional().transform((v) => (v ? v : null)),
});

/** The viewer's zoom steps (CSS classes; no script needed). */
const ZOOMS = ['fit', '100', '200', '400'] as const;
const zoomQuery = z.object({ zoom: z.enum(ZOOMS).catch('fit') }).catch({ zoom: 'fit' as const });


/** Documents and images: the patient's list with upload form, uploads, signed-URL views, deletion. */
export function documentsController(d: DocumentsControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);

  const render = async (req: Request, res: Response, patientId: string, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string; values?: { kind: string; title: string } } = {}) => {
    const actor = actorOf(res);
    const page = await documentsPage(d, actor, patientId, meta(req));
    const sign = (docId: string, variant: Variant) => `/p/${actor.slug}/files/${signFileUrl(d.fileUrlKey, { docId, patientId, variant, sid: req.sessionID, now: d.clock() })}`;
    const documents = page.documents.map((doc) => ({ ...doc, thumbUrl: doc.isImage ? sign(doc.id, 'thumb') : undefined, viewerUrl: `/p/${actor.slug}/documents/${doc.id}`, originalUrl: sign(doc.id, 'original') }));
    res.status(status).render('patients/documents', { title: `Documents: ${page.patient.name}`, slug: actor.slug, actor, page, documents, kinds: page.kinds, labels: DOCUMENT_KIND_LABELS, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, values: { kind: '', title: '' }, notice: undefined, ...extra });
  };

  return {
    /** GET /p/:slug/patients/:id/documents */
    index: (async (req, res) => {
      const done = req.query.done === 'uploaded' ? 'Uploaded.' : req.query.done === 'deleted' ? 'Deleted.' : undefined;
      await render(req, res, idOf(req, 'patient'), 200, { notice: done });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/documents — multipart (parsed under limits, then CSRF-checked). */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const patientId = idOf(req, 'patient');
      const b = (req.body ?? {}) as Record<string, unknown>;
      const values = { kind: typeof b.kind === 'string' ? b.kind.slice(0, 40) : '', title: typeof b.title === 'string' ? b.title.slice(0, 200) : '' };
      // Every problem at once, each beside its field: the kind, the title, the file.
      const again = (status: number, errors: Record<string, string>) => render(req, res, patientId, status, { errors, values, error: errorSummary(errors) });
      if (res.locals.uploadError) return again(res.locals.uploadError, { file: uploadErrorMessage(res.locals.uploadError) });
      const form = uploadForm.safeParse(b);
      const errors: Record<string, string> = form.success ? {} : fieldErrors(form.error);
      if (form.success && !uploadableKinds(actor).includes(form.data.kind)) errors.kind = 'Choose what kind of document this is.';
      if (!req.file) errors.file = 'Choose a file to upload.';
      if (!form.success || Object.keys(errors).length > 0 || !req.file) return again(400, errors);
      try {
        const accepted = await processUpload(req.file.buffer, req.file.originalname);
        await uploadDocument(d, actor, patientId, form.data, accepted, meta(req));
      } catch (err) {
        if (err instanceof UploadRefused) return again(err.status, { file: err.message });
        if (err instanceof StorageError) {
          req.log.error({ code: err.code }, 'file store could not write; upload refused');
          return render(req, res, patientId, 503, { error: STORAGE_FAILED_MESSAGE, values });
        }
        throw err;
      }
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/documents?done=uploaded`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/documents/:id — the viewer: the image at a chosen zoom (or the PDF to open), with what it is and whose. */
    show: (async (req, res) => {
      const actor = actorOf(res);
      const page = await documentViewer(d, actor, idOf(req, 'document'), meta(req));
      const { zoom } = zoomQuery.parse(req.query ?? {});
      const sign = (variant: Variant) => `/p/${actor.slug}/files/${signFileUrl(d.fileUrlKey, { docId: page.document.id, patientId: page.patient.id, variant, sid: req.sessionID, now: d.clock() })}`;
      res.render('patients/document', { title: `${DOCUMENT_KIND_LABELS[page.document.kind as keyof typeof DOCUMENT_KIND_LABELS] ?? 'Document'}: ${page.patient.name}`, slug: actor.slug, actor, page, labels: DOCUMENT_KIND_LABELS, zoom, zooms: ZOOMS, viewUrl: sign('view'), originalUrl: sign('original') });
    }) satisfies RequestHandler,

    /** GET /p/:slug/files/:token — short-lived, bound to this session; original needs a recent step-up. */
    file: (async (req, res) => {
      const actor = actorOf(res);
      const token = typeof req.params.token === 'string' ? req.params.token : '';
      const signed = verifyFileUrl(d.fileUrlKey, token, req.sessionID, d.clock());
      if (!signed) throw new AccessDenied({ resource: { type: 'document' } });
      if (signed.variant === 'original' && d.clock() - actor.authAt > STEP_UP_MAX_AGE_MS) {
        // Back to the document's viewer, whose download link then works (the signed URL itself expires).
        return res.redirect(303, `/p/${actor.slug}/step-up?next=${encodeURIComponent(`/p/${actor.slug}/documents/${signed.docId}`)}`);
      }
      const content = await readDocument(d, actor, signed.docId, signed.variant, meta(req));
      if (content.patientId !== signed.patientId) throw new AccessDenied({ resource: { type: 'document', id: signed.docId } });
      // SECURITY: no caching, no sniffing, a sandbox around anything rendered, and a name we chose.
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Content-Security-Policy', "default-src 'none'; img-src 'self'; sandbox");
      res.setHeader('Content-Type', content.contentType);
      res.setHeader('Content-Disposition', `${signed.variant === 'original' ? 'attachment' : 'inline'}; filename="${content.filename}"`);
      res.send(content.data);
    }) satisfies RequestHandler,

    /** POST /p/:slug/documents/:id/delete */
    destroy: (async (req, res) => {
      const actor = actorOf(res);
      const patientId = await deleteDocument(d, actor, idOf(req, 'document'), meta(req));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/documents?done=deleted`);
    }) satisfies RequestHandler,
  };
}
