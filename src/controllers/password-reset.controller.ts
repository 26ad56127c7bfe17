import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import { checkResetToken, requestPasswordReset, resetPassword } from '../auth/password-reset.service.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { renderError } from '../middleware/errors.js';
import { invitationForm, invitationParams } from '../validation/users.schema.js';
import { practiceFromParams } from './practice-context.js';
import { requestMeta } from './request.js';
import { rememberSignInEmail } from './signin.controller.js';

export interface PasswordResetControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  publicUrl: URL;
}

const SENT = 'If that address belongs to an account here, a link to choose a new password is on its way. It works once, for 30 minutes.';
const GONE = 'This link has expired or was already used. Ask for a new one below.';
const requestForm = form({ email: z.string().trim().min(3).max(254) });

/** Password reset by email: request a link (same answer for every address), then choose a password. */
export function passwordResetController(d: PasswordResetControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const page = (res: Response, status: number, slug: string, view: Record<string, unknown>) =>
    res.status(status).render('auth/password-reset', { title: 'Reset your password', slug, csrfToken: res.locals.csrfToken, notice: undefined, error: undefined, errors: {}, step: 'request', email: '', token: '', ...view });

  return {
    /** GET /p/:slug/password-reset */
    show: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      page(res, 200, practice.slug, {});
    }) satisfies RequestHandler,

    /** POST /p/:slug/password-reset */
    create: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const form = requestForm.safeParse(req.body ?? {});
      if (!form.success) return page(res, 400, practice.slug, { ...resultProblems({ error: 'Enter the email address of your account.', field: 'email' }) });
      await requestPasswordReset(d, practice.id, practice.slug, d.publicUrl, form.data.email, meta(req));
      // SECURITY: the same page whether or not the account exists.
      page(res, 200, practice.slug, { notice: SENT, step: 'sent' });
    }) satisfies RequestHandler,

    /** GET /p/:slug/password-reset/:token */
    showChoose: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const token = invitationParams.safeParse(req.params);
      const state = token.success ? await checkResetToken(d.db, practice.id, token.data.token, new Date(d.clock())) : { ok: false as const };
      if (!state.ok || !token.success) return page(res, 410, practice.slug, { error: GONE });
      page(res, 200, practice.slug, { step: 'choose', email: state.email, token: token.data.token });
    }) satisfies RequestHandler,

    /** POST /p/:slug/password-reset/:token */
    choose: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const token = invitationParams.safeParse(req.params);
      const state = token.success ? await checkResetToken(d.db, practice.id, token.data.token, new Date(d.clock())) : { ok: false as const };
      if (!state.ok || !token.success) return page(res, 410, practice.slug, { error: GONE });
      const again = (problems: FormProblems) => page(res, 400, practice.slug, { step: 'choose', email: state.email, token: token.data.token, ...problems });
      const form = invitationForm.safeParse(req.body ?? {});
      if (!form.success) return again(formProblems(form.error));
      const result = await resetPassword(d.db, practice.id, token.data.token, form.data.password, meta(req));
      if (!result.ok) return 'gone' in result ? page(res, 410, practice.slug, { error: GONE }) : again(resultProblems({ error: result.error, field: 'password' }));
      rememberSignInEmail(req, state.email, d.clock());
      res.redirect(303, `/p/${practice.slug}/sign-in?ended=reset`);
    }) satisfies RequestHandler,
  };
}
