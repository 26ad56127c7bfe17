import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { endSession, type Clock } from '../auth/staff-auth.js';
import { renewPatientSession } from '../auth/session.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { createLink, linkState, patientLinks, revokeLink, verifyDob } from '../services/links/links.service.js';
import { decideByLink, listPlanChoices, planForLink } from '../services/patients/plans.service.js';
import type { Meta } from '../services/staff-work.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface LinksControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  publicUrl: URL;
}

const codeParams = z.object({ code: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });
const dobForm = z.object({ dob: z.string().trim().min(1).max(20) });
const linkForm = z.object({ purpose: z.literal('plan_review', 'Choose what the link is for.'), planId: z.uuid('Choose a presented treatment plan.') });

const decisionForm = z.object({
  decision: z.enum(['accepted', 'declined'], 'Choose accept or decline.'),
  fullName: z.string().trim().min(2, 'Type your full name.').max(120, 'The name is too long.'),
  signature: z.string().trim().min(2, 'Type your signature (your name again is fine).').max(120, 'The signature is too long.'),
});

const GONE = 'This link no longer works. It may have expired, been replaced, or been locked after several tries.';

/** Patient links: staff create/list/revoke; the patient opens one, proves their date of birth, and sees its one purpose. */
export function linksController(d: LinksControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const patientId = (req: Request): string => idOf(req, 'patient');
  const staffPage = async (req: Request, res: Response, status: number, extra: { error?: string; link?: string; expiresAt?: Date } = {}) => {
    const actor = actorOf(res);
    const id = patientId(req);
    const [links, plans] = [await patientLinks(d.db, actor, id, meta(req)), await listPlanChoices(d, actor, id, meta(req))];
    res.status(status).render('links/index', { title: 'Patient links', slug: actor.slug, actor, patientId: id, links, plans, csrfToken: res.locals.csrfToken, error: undefined, link: undefined, expiresAt: undefined, ...extra });
  };
  const gone = (res: Response, phone: string | null) => res.status(410).render('links/gone', { title: 'Link unavailable', message: GONE, phone });
  const dobPage = (res: Response, status: number, code: string, error?: string) => res.status(status).render('links/verify', { title: 'Confirm it is you', code, csrfToken: res.locals.csrfToken, error });

  return {
    /** GET /p/:slug/patients/:id/links */
    index: (async (req, res) => staffPage(req, res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/links — the link is shown once (messaging sends it later). */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const form = linkForm.safeParse(req.body ?? {});
      if (!form.success) return staffPage(req, res, 400, { error: form.error.issues[0]?.message ?? 'Check the form.' });
      const result = await createLink(d.db, actor, patientId(req), form.data, meta(req));
      if (!result.ok) return staffPage(req, res, 400, { error: result.error });
      await staffPage(req, res, 201, { link: new URL(`/l/${result.value.code}`, d.publicUrl).toString(), expiresAt: result.value.expiresAt });
    }) satisfies RequestHandler,

    /** POST /p/:slug/links/:id/revoke */
    revoke: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'portal_link');
      const pid = await revokeLink(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/patients/${pid}/links`);
    }) satisfies RequestHandler,

    /** GET /l/:code — the date-of-birth form (or the neutral page for a used-up link). */
    open: (async (req, res) => {
      const p = codeParams.safeParse(req.params);
      if (!p.success) return gone(res, null);
      const state = await linkState(d.db, p.data.code, new Date(d.clock()));
      if (state.state === 'gone') return gone(res, state.phone);
      dobPage(res, 200, p.data.code);
    }) satisfies RequestHandler,

    /** POST /l/:code — the date of birth. */
    verify: (async (req, res) => {
      const p = codeParams.safeParse(req.params);
      if (!p.success) return gone(res, null);
      const form = dobForm.safeParse(req.body ?? {});
      if (!form.success) return dobPage(res, 400, p.data.code, 'Enter your date of birth.');
      const result = await verifyDob(d, p.data.code, form.data.dob, meta(req));
      if (!result.ok) return result.gone ? gone(res, result.phone) : dobPage(res, 401, p.data.code, 'That did not match our records. Enter your date of birth as MM/DD/YYYY.');
      const now = d.clock();
      await renewPatientSession(req, { practiceId: result.practiceId, linkId: result.linkId, patientId: result.patientId, createdAt: now, lastSeenAt: now });
      res.redirect(303, '/portal');
    }) satisfies RequestHandler,

    /** GET /portal — this link's one purpose. */
    portal: (async (req, res) => {
      const link = res.locals.patientLink!;
      const plan = await planForLink(d, link, meta(req));
      res.render('links/portal', { title: 'Your treatment plan', plan, csrfToken: res.locals.csrfToken, error: undefined, notice: req.query.done === '1' ? 'Thank you. Your decision is recorded and the office has it.' : undefined });
    }) satisfies RequestHandler,

    /** POST /portal/decision — accept or decline, with the typed full name and signature. */
    decide: (async (req, res) => {
      const link = res.locals.patientLink!;
      const form = decisionForm.safeParse(req.body ?? {});
      const again = async (status: number, error: string) => res.status(status).render('links/portal', { title: 'Your treatment plan', plan: await planForLink(d, link, meta(req)), csrfToken: res.locals.csrfToken, error, notice: undefined });
      if (!form.success) return again(400, form.error.issues[0]?.message ?? 'Check the form.');
      const result = await decideByLink(d, link, { ...form.data, userAgent: req.get('user-agent') ?? '' }, meta(req));
      if (!result.ok) return again(409, result.error);
      res.redirect(303, '/portal?done=1');
    }) satisfies RequestHandler,

    /** GET /portal/ended */
    ended: ((_req, res) => {
      res.status(200).render('links/gone', { title: 'Session ended', message: 'Your session has ended. Open the link from your message again to continue.', phone: null });
    }) satisfies RequestHandler,

    /** POST /portal/sign-out */
    signOut: (async (req, res) => {
      await endSession(req, res);
      res.redirect(303, '/portal/ended');
    }) satisfies RequestHandler,
  };
}
