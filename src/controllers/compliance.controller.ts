import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems } from '../validation/text.js';
import type { Clock } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import { accessReview, accessReviews, decideReviewItem, reviewOfItem, signOff, startReview } from '../services/compliance/access-reviews.service.js';
import { cancelPatientDeletion, holdPatient, holdPractice, patientRetention, requestPatientDeletion, retentionStatus } from '../services/retention/retention.service.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface ComplianceControllerDeps {
  db: Db;
  clock: Clock;
}

const deletionForm = form({ action: z.enum(['request', 'cancel'], 'Choose request or cancel.') });
const holdForm = form({ action: z.enum(['on', 'off'], 'Choose to place or release the hold.') });
const decisionForm = form({ decision: z.enum(['keep', 'revoke'], 'Choose keep or revoke.') });
const signOffForm = form({ name: z.string().trim().min(2, 'Type your full name to sign the review off.').max(120, 'The name is too long.') });

/** Retention (deletion requests, legal holds) and access reviews: compliance.manage pages. */
export function complianceController(d: ComplianceControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const patientPage = async (req: Request, res: Response, status: number, extra: { error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const id = idOf(req, 'patient');
    res.status(status).render('compliance/patient', { title: 'Deletion and legal hold', slug: actor.slug, actor, patientId: id, state: await patientRetention(d.db, actor, id, meta(req)), csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, ...extra });
  };
  const reviewPage = async (req: Request, res: Response, id: string, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string } = {}) => {
    const actor = actorOf(res);
    res.status(status).render('compliance/review', { title: 'Access review', slug: actor.slug, actor, review: await accessReview(d.db, actor, id, meta(req)), csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: undefined, ...extra });
  };

  return {
    /** GET /p/:slug/compliance */
    index: (async (req, res) => {
      const actor = actorOf(res);
      res.render('compliance/index', { title: 'Compliance', slug: actor.slug, actor, status: await retentionStatus(d.db, actor), reviews: await accessReviews(d.db, actor, meta(req)), csrfToken: res.locals.csrfToken, notice: req.query.done === '1' ? 'Saved.' : undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/compliance/legal-hold */
    practiceHold: (async (req, res) => {
      const actor = actorOf(res);
      const form = holdForm.safeParse(req.body ?? {});
      if (!form.success) return res.redirect(303, `/p/${actor.slug}/compliance`);
      await holdPractice(d.db, actor, form.data.action === 'on', meta(req));
      res.redirect(303, `/p/${actor.slug}/compliance?done=1`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/retention */
    patient: (async (req, res) => patientPage(req, res, 200, req.query.done === '1' ? { notice: 'Saved.' } : {})) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/deletion */
    deletion: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient');
      const form = deletionForm.safeParse(req.body ?? {});
      if (!form.success) return patientPage(req, res, 400, { error: form.error.issues[0]?.message ?? 'Check the form.' });
      if (form.data.action === 'cancel') await cancelPatientDeletion(d.db, actor, id, meta(req));
      else {
        const r = await requestPatientDeletion(d.db, actor, id, meta(req));
        if (!r.ok) return patientPage(req, res, 409, { error: r.error });
      }
      res.redirect(303, `/p/${actor.slug}/patients/${id}/retention?done=1`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/legal-hold */
    patientHold: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient');
      const form = holdForm.safeParse(req.body ?? {});
      if (!form.success) return patientPage(req, res, 400, { error: form.error.issues[0]?.message ?? 'Check the form.' });
      await holdPatient(d.db, actor, id, form.data.action === 'on', meta(req));
      res.redirect(303, `/p/${actor.slug}/patients/${id}/retention?done=1`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/access-reviews — a review now (on demand). */
    startReview: (async (req, res) => {
      const actor = actorOf(res);
      const id = await startReview(d.db, actor, meta(req));
      res.redirect(303, `/p/${actor.slug}/access-reviews/${id}`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/access-reviews/:id */
    review: (async (req, res) => reviewPage(req, res, idOf(req, 'access_review'), 200, req.query.done === '1' ? { notice: 'Signed off.' } : {})) satisfies RequestHandler,

    /** POST /p/:slug/access-review-items/:id — keep or revoke one line. */
    decide: (async (req, res) => {
      const actor = actorOf(res);
      const itemId = idOf(req, 'access_review');
      const form = decisionForm.safeParse(req.body ?? {});
      if (!form.success) return reviewPage(req, res, await reviewOfItem(d.db, actor, itemId), 400, { error: form.error.issues[0]?.message ?? 'Check the form.' });
      const r = await decideReviewItem(d.db, actor, itemId, form.data.decision, meta(req));
      if (r.error) return reviewPage(req, res, r.reviewId, 409, { error: r.error });
      res.redirect(303, `/p/${actor.slug}/access-reviews/${r.reviewId}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/access-reviews/:id/sign-off */
    signOff: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'access_review');
      const form = signOffForm.safeParse(req.body ?? {});
      if (!form.success) return reviewPage(req, res, id, 400, formProblems(form.error));
      const r = await signOff(d.db, actor, id, form.data.name, meta(req));
      if (!r.ok) return reviewPage(req, res, id, 409, { error: r.error });
      res.redirect(303, `/p/${actor.slug}/access-reviews/${id}?done=1`);
    }) satisfies RequestHandler,
  };
}
