import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems } from '../validation/text.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { amendNote, changeDraft, createNote, notesPage } from '../services/patients/notes.service.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface NotesControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

const noteForm = form({
  body: z.string().trim().min(1, 'Write the note before saving it.').max(20_000, 'A note holds at most 20,000 characters; split it or attach a document.'),
  action: z.enum(['draft', 'sign']).default('draft'),
});

/** Draft edits and amendments: length-checked here, emptiness in the service (after the access check). */
const changeForm = form({ body: z.string().trim().max(20_000).default(''), action: z.enum(['draft', 'sign']).default('draft') });


/** Clinical notes of a patient: list with amendments, write (draft or sign), edit own draft, amend. */
export function notesController(d: NotesControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const render = async (req: Request, res: Response, patientId: string, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string; draft?: string } = {}) => {
    const actor = actorOf(res);
    const page = await notesPage(d, actor, patientId, meta(req));
    res.status(status).render('patients/notes', { title: `Notes: ${page.patient.name}`, slug: actor.slug, actor, page, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: undefined, draft: '', ...extra });
  };

  return {
    /** GET /p/:slug/patients/:id/notes */
    index: (async (req, res) => {
      const done = req.query.done === 'saved' ? 'Saved.' : req.query.done === 'signed' ? 'Signed. The note is now locked; corrections are amendments.' : req.query.done === 'amended' ? 'Amendment added; the original is unchanged.' : undefined;
      await render(req, res, idOf(req, 'patient'), 200, { notice: done });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/notes */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const patientId = idOf(req, 'patient');
      const form = noteForm.safeParse(req.body ?? {});
      const typed = typeof (req.body as { body?: unknown } | undefined)?.body === 'string' ? String((req.body as { body: string }).body).slice(0, 20_000) : '';
      if (!form.success) return render(req, res, patientId, 400, { ...formProblems(form.error), draft: typed });
      await createNote(d, actor, patientId, form.data.body, form.data.action === 'sign', meta(req));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/notes?done=${form.data.action === 'sign' ? 'signed' : 'saved'}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/notes/:id — the author's draft: save or sign. */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'clinical_note');
      const form = changeForm.safeParse(req.body ?? {});
      const result = await changeDraft(d, actor, id, form.success ? form.data.body : '', form.success && form.data.action === 'sign', meta(req));
      if (!result.ok) return render(req, res, result.patientId, form.success ? result.status : 400, { error: form.success ? result.error : 'A note holds at most 20,000 characters.' });
      res.redirect(303, `/p/${actor.slug}/patients/${result.patientId}/notes?done=${form.success && form.data.action === 'sign' ? 'signed' : 'saved'}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/notes/:id/amend */
    amend: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'clinical_note');
      const form = changeForm.safeParse(req.body ?? {});
      const result = await amendNote(d, actor, id, form.success ? form.data.body : '', meta(req));
      if (!result.ok) return render(req, res, result.patientId, form.success ? result.status : 400, { error: form.success ? result.error : 'An amendment holds at most 20,000 characters.' });
      res.redirect(303, `/p/${actor.slug}/patients/${result.patientId}/notes?done=amended`);
    }) satisfies RequestHandler,
  };
}
