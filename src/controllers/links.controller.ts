import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems, resultProblems } from '../validation/text.js';
import { endSession } from '../auth/staff-auth.js';
import type { Clock, Meta } from '../shared/types.js';
import { renewPatientSession } from '../auth/session.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { LINK_TASKS } from '../links/tasks.js';
import { formTemplates } from '../services/forms/forms.service.js';
import { createLink, linkState, patientLinks, revokeLink, verifyDob, type CreatedLink } from '../services/links/links.service.js';
import { listPlanChoices } from '../services/patients/plans.service.js';
import type { PracticeBrand } from '../presenters/format.js';
import { qrSvg } from '../presenters/qr.js';
import { putStash, takeStash } from '../auth/session-stash.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface LinksControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  publicUrl: URL;
}

const codeParams = z.object({ code: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });
const dobForm = form({ dob: z.string().trim().min(1).max(20) });
/** A form field that may repeat (checkboxes): always an array. */
const many = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).max(20)]).optional().transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
const linkForm = form({
  tasks: many(z.enum(LINK_TASKS, 'Choose what the link is for.')),
  planId: z.union([z.uuid('Choose a presented treatment plan.'), z.literal('')]).optional().transform((v) => v || undefined),
  forms: many(z.uuid('Choose one or more of the practice’s forms.')),
  send: z.enum(['none', 'email', 'sms'], 'Choose how the link reaches the patient.').default('none'),
});

/** What a re-rendered links form keeps checked (nothing on a GET). */
function chosen(req: Request): { tasks: string[]; forms: string[]; planId: string; send: string } {
  const b = (req.method === 'POST' ? (req.body ?? {}) : {}) as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string').slice(0, 50);
  return { tasks: list(b.tasks), forms: list(b.forms), planId: typeof b.planId === 'string' ? b.planId : '', send: typeof b.send === 'string' ? b.send : 'none' };
}

/** The link just created, shown once on the links page after the redirect. */
type CreatedView = Omit<CreatedLink, 'code'> & { link: string; qr: string };
const createdStash = (slug: string, patientId: string) => `link-created:/p/${slug}/patients/${patientId}`;

/** What each task is, in the words of the links form. */
const TASK_LABELS: Record<string, string> = { plan_review: 'Plan decision', intake_forms: 'Forms', uploads: 'Uploads (insurance card, ID, photos)', access_report: 'Who saw my record', records_download: 'Download their records', amendment_request: 'Ask for a correction' };

const GONE = 'This link no longer works. It may have expired, been replaced, or been locked after several tries.';

/** Patient links: staff create, send, list and revoke; the patient opens one and proves their date of birth. */
export function linksController(d: LinksControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const patientId = (req: Request): string => idOf(req, 'patient');
  const staffPage = async (req: Request, res: Response, status: number, extra: { error?: string; errors?: Record<string, string>; created?: CreatedView } = {}) => {
    const actor = actorOf(res);
    const id = patientId(req);
    const { patientName, links } = await patientLinks(d, actor, id, meta(req));
    const plans = await listPlanChoices(d, actor, id, meta(req));
    const forms = (await formTemplates(d.db, actor)).filter((f) => !f.archived);
    res.status(status).render('links/index', { title: `Patient links: ${patientName}`, slug: actor.slug, actor, patientId: id, patientName, taskLabels: TASK_LABELS, links, plans, forms, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, created: undefined, values: chosen(req), ...extra });
  };
  const branded = (res: Response, brand: PracticeBrand | undefined) => {
    if (brand) {
      res.locals.brand = brand;
      res.locals.fmt = brand.fmt;
    }
  };
  const gone = (res: Response, phone: string | null, brand?: PracticeBrand) => {
    branded(res, brand);
    res.status(410).render('links/gone', { title: 'Link unavailable', message: GONE, phone });
  };
  const dobPage = (res: Response, status: number, code: string, extra: { error?: string; warning?: string; brand?: PracticeBrand; typed?: string } = {}) => {
    branded(res, extra.brand);
    res.status(status).render('links/verify', { title: 'Confirm it is you', code, csrfToken: res.locals.csrfToken, error: extra.error, warning: extra.warning, typed: extra.typed ?? '' });
  };

  return {
    /** GET /p/:slug/patients/:id/links — with the link just created, once (post/redirect/get). */
    index: (async (req, res) => {
      const actor = actorOf(res);
      const id = patientId(req);
      const just = takeStash<{ link: string; expiresAt: string; message?: CreatedLink['message'] }>(req, createdStash(actor.slug, id), d.clock());
      const created = just ? { link: just.link, expiresAt: new Date(just.expiresAt), ...(just.message ? { message: just.message } : {}), qr: await qrSvg(just.link) } : undefined;
      await staffPage(req, res, 200, created ? { created } : {});
    }) satisfies RequestHandler,

    /**
     * POST /p/:slug/patients/:id/links — creates the link (and queues the message, if asked), then
     * redirects to the links page, which shows it once: a reload creates nothing more.
     */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const form = linkForm.safeParse(req.body ?? {});
      if (!form.success) return staffPage(req, res, 400, formProblems(form.error));
      const id = patientId(req);
      const result = await createLink(d, actor, id, { tasks: form.data.tasks, planId: form.data.planId, formTemplateIds: form.data.forms, send: form.data.send }, meta(req));
      if (!result.ok) return staffPage(req, res, 400, resultProblems(result));
      // SECURITY: the code waits for the next page sealed in the session (session-stash.ts), never in the URL.
      putStash(req, createdStash(actor.slug, id), { link: new URL(`/l/${result.value.code}`, d.publicUrl).toString(), expiresAt: result.value.expiresAt.toISOString(), ...(result.value.message ? { message: result.value.message } : {}) }, d.clock());
      res.redirect(303, `/p/${actor.slug}/patients/${id}/links`);
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
      if (state.state === 'gone') return gone(res, state.phone, state.brand);
      dobPage(res, 200, p.data.code, { brand: state.brand });
    }) satisfies RequestHandler,

    /** POST /l/:code — the date of birth. */
    verify: (async (req, res) => {
      const p = codeParams.safeParse(req.params);
      if (!p.success) return gone(res, null);
      const form = dobForm.safeParse(req.body ?? {});
      if (!form.success) return dobPage(res, 400, p.data.code, { error: 'Enter your date of birth.' });
      const result = await verifyDob(d, p.data.code, form.data.dob, meta(req));
      if (!result.ok) {
        if (result.gone) return gone(res, result.phone, result.brand);
        // An unreadable date comes back as typed, to correct (a date that did not match does not).
        if (result.formatError) return dobPage(res, 400, p.data.code, { error: result.formatError, brand: result.brand, typed: form.data.dob.slice(0, 10) });
        const hint = result.brand?.fmt.dateHint ?? 'MM/DD/YYYY';
        const warning = result.remaining === 1 ? `One try left. After one more date that does not match, this link stops working${result.phone ? ` and you will need to call the office at ${result.phone}` : ' and you will need to call the office'}.` : undefined;
        return dobPage(res, 401, p.data.code, { error: `That did not match our records. Enter your date of birth as ${hint}, or as digits only.`, ...(warning ? { warning } : {}), brand: result.brand });
      }
      const now = d.clock();
      await renewPatientSession(req, { practiceId: result.practiceId, linkId: result.linkId, patientId: result.patientId, createdAt: now, lastSeenAt: now });
      res.redirect(303, '/portal');
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
