import type { Request, RequestHandler, Response } from 'express';
import type { Clock } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import { renderError } from '../middleware/errors.js';
import { acceptInvitation, checkInvitation } from '../services/users/users.service.js';
import { invitationForm, invitationParams } from '../validation/users.schema.js';
import { formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import { practiceFromParams } from './practice-context.js';
import { requestMeta } from './request.js';
import { rememberSignInEmail } from './signin.controller.js';

export interface InvitationsControllerDeps {
  db: Db;
  clock: Clock;
}

const GONE = 'This invitation link has expired, was already used, or was replaced by a newer one. Ask your practice administrator for a new link.';

/** Accepting an invitation: the single-use link lets a new user choose their password. */
export function invitationsController(d: InvitationsControllerDeps) {
  const context = async (req: Request, res: Response) => {
    const practice = await practiceFromParams(d.db, req);
    const token = invitationParams.safeParse(req.params);
    if (!practice) {
      renderError(res, 404);
      return undefined;
    }
    return { practice, token: token.success ? token.data.token : undefined };
  };
  const gone = (res: Response, slug: string) => res.status(410).render('auth/invitation', { title: 'Invitation', slug, state: 'gone', message: GONE, csrfToken: undefined, error: undefined, errors: {}, email: '' });

  return {
    /** GET /p/:slug/invitations/:token */
    show: (async (req, res) => {
      const c = await context(req, res);
      if (!c) return;
      const state = c.token ? await checkInvitation(d.db, c.practice.id, c.token, new Date(d.clock())) : { ok: false as const };
      if (!state.ok) return gone(res, c.practice.slug);
      res.render('auth/invitation', { title: 'Choose your password', slug: c.practice.slug, state: 'open', email: state.email, token: c.token, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, message: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/invitations/:token */
    accept: (async (req, res) => {
      const c = await context(req, res);
      if (!c) return;
      if (!c.token) return gone(res, c.practice.slug);
      const state = await checkInvitation(d.db, c.practice.id, c.token, new Date(d.clock()));
      if (!state.ok) return gone(res, c.practice.slug);
      const form = invitationForm.safeParse(req.body ?? {});
      const again = (problems: FormProblems) => res.status(400).render('auth/invitation', { title: 'Choose your password', slug: c.practice.slug, state: 'open', email: state.email, token: c.token, csrfToken: res.locals.csrfToken, ...problems, message: undefined });
      if (!form.success) return again(formProblems(form.error));
      const result = await acceptInvitation(d.db, c.practice.id, c.token, form.data.password, requestMeta(req, d.clock));
      if (!result.ok) return 'gone' in result ? gone(res, c.practice.slug) : again(resultProblems({ error: result.error, field: 'password' }));
      rememberSignInEmail(req, state.email, d.clock());
      res.redirect(303, `/p/${c.practice.slug}/sign-in?ended=welcome`);
    }) satisfies RequestHandler,
  };
}
