import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems, resultProblems } from '../validation/text.js';
import type { Clock } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { fieldLines, parseFieldLines } from '../forms/definition.js';
import { formTemplate, formTemplates, patientSubmissions, readSubmission, reviewSubmission, saveFormTemplate } from '../services/forms/forms.service.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface FormsControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

const templateForm = form({
  title: z.string().max(200).default(''),
  notice: z.string().max(25_000).default(''),
  fields: z.string().max(30_000, 'The field list is too long.').default(''),
  archived: z.literal('on').optional(),
});

type Values = { title: string; notice: string; fields: string; archived: boolean };

/** Forms: the practice's templates (edit = new version) and the patients' submissions (list, read, print, review). */
export function formsController(d: FormsControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const editPage = (res: Response, status: number, v: { id?: string; version?: number; values: Values; error?: string; errors?: Record<string, string> }) =>
    res.status(status).render('forms/edit', { title: v.id ? 'Edit form' : 'New form', slug: actorOf(res).slug, actor: actorOf(res), csrfToken: res.locals.csrfToken, id: v.id, version: v.version, values: v.values, error: v.error, errors: v.errors ?? {} });

  const save = (id: string | undefined): RequestHandler =>
    (async (req, res) => {
      const actor = actorOf(res);
      if (id) await formTemplate(d.db, actor, id); // another practice's id is not found before anything else
      const form = templateForm.safeParse(req.body ?? {});
      const b = (req.body ?? {}) as Record<string, unknown>;
      const typed = (k: string, max: number) => (typeof b[k] === 'string' ? (b[k] as string).slice(0, max) : '');
      const values: Values = form.success ? { title: form.data.title, notice: form.data.notice, fields: form.data.fields, archived: form.data.archived === 'on' } : { title: typed('title', 120), notice: typed('notice', 20000), fields: typed('fields', 20000), archived: b.archived === 'on' };
      if (!form.success) return editPage(res, 400, { ...(id ? { id } : {}), values, ...formProblems(form.error) });
      const fields = parseFieldLines(values.fields);
      if (!fields.ok) return editPage(res, 400, { ...(id ? { id } : {}), values, ...resultProblems({ error: fields.error, field: 'fields' }) });
      const result = await saveFormTemplate(d.db, actor, id, { definition: { title: values.title.trim(), notice: values.notice.trim(), fields: fields.fields }, archived: values.archived }, meta(req));
      if (!result.ok) return editPage(res, 400, { ...(id ? { id } : {}), values, ...resultProblems(result) });
      res.redirect(303, `/p/${actor.slug}/forms?saved=1`);
    }) satisfies RequestHandler;

  return {
    /** GET /p/:slug/forms */
    index: (async (req, res) => {
      const actor = actorOf(res);
      res.render('forms/index', { title: 'Forms', slug: actor.slug, actor, templates: await formTemplates(d.db, actor), notice: req.query.saved === '1' ? 'Saved as a new version. Links already sent keep the version the patient sees when they open it.' : undefined });
    }) satisfies RequestHandler,

    /** GET /p/:slug/forms/new */
    new: ((_req, res) => editPage(res, 200, { values: { title: '', notice: '', fields: 'Your question | text | required', archived: false } })) satisfies RequestHandler,

    /** POST /p/:slug/forms */
    create: save(undefined),

    /** GET /p/:slug/forms/:id */
    edit: (async (req, res) => {
      const t = await formTemplate(d.db, actorOf(res), idOf(req, 'form_template'));
      editPage(res, 200, { id: t.id, version: t.version, values: { title: t.definition.title, notice: t.definition.notice, fields: fieldLines(t.definition.fields), archived: t.archived } });
    }) satisfies RequestHandler,

    /** POST /p/:slug/forms/:id — a new version. */
    update: (async (req, res, next) => save(idOf(req, 'form_template'))(req, res, next)) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/forms */
    patientForms: (async (req, res) => {
      const actor = actorOf(res);
      const { patient, submissions } = await patientSubmissions(d, actor, idOf(req, 'patient'), meta(req));
      res.render('forms/patient', { title: 'Forms', slug: actor.slug, actor, patient, submissions });
    }) satisfies RequestHandler,

    /** GET /p/:slug/form-submissions/:id (?print=1 for the print view, audited as a print) */
    show: (async (req, res) => {
      const actor = actorOf(res);
      const print = req.query.print === '1';
      const s = await readSubmission(d, actor, idOf(req, 'form_submission'), print ? 'print' : 'view', meta(req));
      res.render('forms/submission', { title: s.definition.title, slug: actor.slug, actor, s, print, printedAt: new Date(d.clock()), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /p/:slug/form-submissions/:id/review */
    review: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'form_submission');
      await reviewSubmission(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/form-submissions/${id}`);
    }) satisfies RequestHandler,
  };
}
