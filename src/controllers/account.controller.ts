import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { form, formProblems, resultProblems } from '../validation/text.js';
import { changePassword, confirmOwnPassword, regenerateRecoveryCodes, stepUp } from '../auth/account.service.js';
import { confirmEnrollment, openPendingSecret, qrDataUrl } from '../auth/mfa.service.js';
import { pendingEnrollment } from './enrollment.js';
import { totpUri } from '../auth/totp.js';
import { renewSession } from '../auth/session.js';
import { endOwnSessions, listOwnSessions } from '../auth/sessions.service.js';
import { safeReturnPath, STEP_UP_MAX_AGE_MS } from '../auth/staff-auth.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { renderError } from '../middleware/errors.js';
import { ownAccount } from '../auth/signin.service.js';
import { practiceFromParams, signedInStaff } from './practice-context.js';
import { requestMeta } from './request.js';

const passwordForm = form({ current: z.string().min(1, 'Enter your current password.').max(1024), password: z.string().min(1, 'Choose a new password.').max(1024) });
const stepUpForm = form({ password: z.string().min(1).max(1024), code: z.string().trim().max(40).optional(), next: z.string().max(300).optional() });
const mfaForm = form({ code: z.string().trim().regex(/^\d{6}$/), password: z.string().max(1024).optional() });

export interface AccountControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

/** The signed-in user's own account: password change, step-up, new recovery codes. */
export function accountController(d: AccountControllerDeps) {
  /** The practice of the URL and the session's user — only if the session belongs to it. */
  const context = async (req: Request): Promise<{ practiceId: string; slug: string; userId: string } | undefined> => {
    const practice = await practiceFromParams(d.db, req);
    const s = practice && signedInStaff(req, practice.id);
    return practice && s ? { practiceId: practice.id, slug: practice.slug, userId: s.userId } : undefined;
  };
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const recent = (req: Request): boolean => Boolean(req.session?.staff && d.clock() - req.session.staff.authAt <= STEP_UP_MAX_AGE_MS);
  const renew = (req: Request): Promise<void> => {
    const now = d.clock();
    return renewSession(req, { ...req.session.staff!, createdAt: now, lastSeenAt: now, authAt: now });
  };

  return {
    /** GET /p/:slug/account */
    show: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const user = await ownAccount(d.db, c.practiceId, c.userId);
      const sessions = await listOwnSessions(d.db, c.practiceId, c.userId, req.sessionID);
      const ended = typeof req.query.ended === 'string' && /^\d{1,3}$/.test(req.query.ended) ? Number(req.query.ended) : undefined;
      res.render('account/show', { errors: {}, title: 'Your account', slug: c.slug, email: user?.email ?? '', mfa: Boolean(user?.mfa_enrolled_at), sessions, csrfToken: res.locals.csrfToken, error: undefined, notice: ended === undefined ? undefined : `${ended} other session(s) ended.` });
    }) satisfies RequestHandler,

    /** POST /p/:slug/account/sessions/end — one of the user's other sessions, or all others. */
    endSessions: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const form = z.object({ handle: z.union([z.literal('others'), z.string().regex(/^[0-9a-f]{24}$/)]) }).safeParse(req.body ?? {});
      if (!form.success) return renderError(res, 400);
      const n = await endOwnSessions(d.db, c.practiceId, c.userId, req.sessionID, form.data.handle, { ip: req.ip ?? '0.0.0.0', requestId: req.id });
      res.redirect(303, `/p/${c.slug}/account?ended=${n}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/account/password */
    updatePassword: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const user = await ownAccount(d.db, c.practiceId, c.userId);
      const view = { title: 'Your account', slug: c.slug, email: user?.email ?? '', mfa: Boolean(user?.mfa_enrolled_at), csrfToken: res.locals.csrfToken };
      const form = passwordForm.safeParse(req.body ?? {});
      const sessions = await listOwnSessions(d.db, c.practiceId, c.userId, req.sessionID);
      if (!form.success) return res.status(400).render('account/show', { ...view, sessions, ...formProblems(form.error), notice: undefined });
      const result = await changePassword(d, c.practiceId, c.userId, form.data.current, form.data.password, meta(req));
      if (!result.ok) return res.status(400).render('account/show', { ...view, sessions, ...resultProblems(result), notice: undefined });
      // SECURITY: other sessions are now void (sessions_valid_after); this one is renewed.
      await renew(req);
      res.render('account/show', { errors: {}, ...view, sessions: [], csrfToken: undefined, error: undefined, notice: 'Your password was changed. Any other sessions of yours were ended.' });
    }) satisfies RequestHandler,

    /** GET /p/:slug/step-up */
    showStepUp: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const user = await ownAccount(d.db, c.practiceId, c.userId);
      res.render('account/step-up', { title: 'Confirm it is you', slug: c.slug, next: safeReturnPath(c.slug, req.query.next), mfa: Boolean(user?.mfa_enrolled_at), csrfToken: res.locals.csrfToken, error: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/step-up — always the password and a fresh code (an account without a second factor enrols first). */
    confirmStepUp: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const form = stepUpForm.safeParse(req.body ?? {});
      const next = safeReturnPath(c.slug, form.success ? form.data.next : undefined);
      const result = form.success ? await stepUp(d, c.practiceId, c.userId, form.data.password, form.data.code, meta(req)) : { ok: false as const, reason: 'wrong' as const };
      if (!result.ok) {
        const user = await ownAccount(d.db, c.practiceId, c.userId);
        const error = result.reason === 'no_second_factor' ? 'This needs two-step sign-in, and your account has none yet. Set it up first.' : 'That did not match. Enter your password and the current code from your app.';
        return res.status(401).render('account/step-up', { title: 'Confirm it is you', slug: c.slug, next, mfa: Boolean(user?.mfa_enrolled_at), csrfToken: res.locals.csrfToken, error });
      }
      await renew(req);
      res.redirect(303, next);
    }) satisfies RequestHandler,

    /**
     * GET /p/:slug/account/mfa — set up two-step sign-in, or replace the authenticator. Replacing
     * needs a recent step-up (with the old factor); a first set-up asks for the password on the form.
     */
    showMfa: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const user = await ownAccount(d.db, c.practiceId, c.userId);
      if (!user) return renderError(res, 404);
      const enrolled = Boolean(user.mfa_enrolled_at);
      if (enrolled && !recent(req)) return res.redirect(303, `/p/${c.slug}/step-up?next=${encodeURIComponent(`/p/${c.slug}/account/mfa`)}`);
      const { secret, uri } = await pendingEnrollment(d, req, c.practiceId, c.userId, user.email);
      res.render('account/mfa', { title: enrolled ? 'Replace your authenticator' : 'Set up two-step sign-in', slug: c.slug, enrolled, secret, qrDataUrl: await qrDataUrl(uri), csrfToken: res.locals.csrfToken, error: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/account/mfa — the code from the new app (and, for a first set-up, the password). */
    confirmMfa: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const user = await ownAccount(d.db, c.practiceId, c.userId);
      const sealed = req.session?.enroll?.secret;
      if (!user || !sealed) return res.redirect(303, `/p/${c.slug}/account/mfa`);
      const enrolled = Boolean(user.mfa_enrolled_at);
      if (enrolled && !recent(req)) return res.redirect(303, `/p/${c.slug}/step-up?next=${encodeURIComponent(`/p/${c.slug}/account/mfa`)}`);
      const secret = await openPendingSecret(d, c.practiceId, c.userId, sealed);
      const form = mfaForm.safeParse(req.body ?? {});
      const again = async (error: string) =>
        res.status(400).render('account/mfa', { title: enrolled ? 'Replace your authenticator' : 'Set up two-step sign-in', slug: c.slug, enrolled, secret, qrDataUrl: await qrDataUrl(totpUri(secret, user.email, 'Enamel')), csrfToken: res.locals.csrfToken, error });
      if (!form.success) return again('Enter the 6-digit code your app shows now.');
      if (!enrolled && !(await confirmOwnPassword(d, c.practiceId, c.userId, form.data.password ?? '', meta(req)))) return again('Your password is not right.');
      const codes = await confirmEnrollment(d, c.practiceId, c.userId, secret, form.data.code, meta(req));
      if (!codes) return again('That code is not right. Enter the 6-digit code your app shows now.');
      req.session.enroll = undefined;
      // SECURITY: a new second factor is a privilege change: a new session id, and the clock of this proof.
      await renew(req);
      const others = (await listOwnSessions(d.db, c.practiceId, c.userId, req.sessionID)).filter((s) => !s.current).length;
      res.render('auth/recovery-codes', { title: 'Your new recovery codes', slug: c.slug, codes, others, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /p/:slug/account/recovery-codes — behind requireRecentAuth. */
    newRecoveryCodes: (async (req, res) => {
      const c = await context(req);
      if (!c) return renderError(res, 404);
      const codes = await regenerateRecoveryCodes(d, c.practiceId, c.userId, meta(req));
      // An MFA change offers to end the user's other sessions.
      const others = (await listOwnSessions(d.db, c.practiceId, c.userId, req.sessionID)).filter((s) => !s.current).length;
      res.render('auth/recovery-codes', { title: 'Your new recovery codes', slug: c.slug, codes, others, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,
  };
}
