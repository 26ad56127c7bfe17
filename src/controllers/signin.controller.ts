import type { Request, RequestHandler, Response } from 'express';
import { confirmEnrollment, openPendingSecret, qrDataUrl, verifySecondFactor } from '../auth/mfa.service.js';
import { pendingEnrollment } from './enrollment.js';
import { renewSession, type StaffSession } from '../auth/session.js';
import { ownAccount, passwordStep, recordPasswordOnlySignIn, recordSignOut, signInSettings } from '../auth/signin.service.js';
import { totpUri } from '../auth/totp.js';
import { endSession, mfaRequiredForEveryone } from '../auth/staff-auth.js';
import type { Clock } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { renderError } from '../middleware/errors.js';
import { codeForm, signInForm } from '../validation/signin.schema.js';
import { practiceFromParams, signedInStaff } from './practice-context.js';
import { requestMeta } from './request.js';
import { putStash, takeStash } from '../auth/session-stash.js';

/** The stash purpose of the address to fill in on the next sign-in page. */
const SIGN_IN_EMAIL = 'sign-in-email';

/** After a password is chosen (invitation, reset): the sign-in page will show the address filled in. */
export function rememberSignInEmail(req: Request, email: string, now: number): void {
  putStash(req, SIGN_IN_EMAIL, email, now);
}

export interface SignInDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  /** Production: MFA for every account, whatever the practice's stored setting. */
  production: boolean;
  /** Evaluation installs: where the demo accounts' credentials were written (shown on the sign-in page). */
  demoCredentialsFile?: string;
}

const ENDED: Record<string, string> = {
  idle: 'You were signed out after a period without activity. Sign in again to continue.',
  absolute: 'Your session reached its maximum length. Sign in again to continue.',
  revoked: 'Your session was ended (your account or its security settings changed). Sign in again.',
  signed_out: 'You are signed out.',
  reset: 'Your new password is set and every session of your account was ended. Sign in with it (and your authenticator code).',
  welcome: 'Your password is set. Sign in with it now; you may be asked to set up two-step sign-in next.',
};

export function signInController(d: SignInDeps) {
  const render = (res: Response, view: string, status: number, locals: Record<string, unknown>): void => {
    res.status(status).render(view, { title: 'Sign in', csrfToken: res.locals.csrfToken, demoCredentialsFile: d.demoCredentialsFile, ...locals });
  };

  const openEnrollSecret = (practiceId: string, userId: string, sealed: string) => openPendingSecret(d, practiceId, userId, sealed);

  const pending = (req: Request, practiceId: string, next: 'totp' | 'enroll'): StaffSession | undefined => {
    const s = req.session?.staff;
    return s && s.stage === 'password' && s.practiceId === practiceId && s.next === next ? s : undefined;
  };

  return {
    /** GET /p/:slug/sign-in */
    show: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      if (signedInStaff(req, practice.id)) return res.redirect(303, `/p/${practice.slug}/home`);
      const ended = typeof req.query.ended === 'string' ? ENDED[req.query.ended] : undefined;
      // CASE: straight after choosing a password (invitation or reset), the address is filled in (kept in the session, not the URL).
      const email = takeStash<string>(req, SIGN_IN_EMAIL, d.clock());
      render(res, 'auth/sign-in', 200, { slug: practice.slug, notice: ended, error: undefined, email: typeof email === 'string' ? email : '' });
    }) satisfies RequestHandler,

    /** POST /p/:slug/sign-in */
    create: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const form = signInForm.safeParse(req.body ?? {});
      if (!form.success) return render(res, 'auth/sign-in', 400, { slug: practice.slug, error: 'Enter your email address and password.', email: '' });
      const settings = await signInSettings(d.db, practice.id);
      const now = d.clock();
      const result = await passwordStep(d.db, { practiceId: practice.id, email: form.data.email, password: form.data.password, ip: req.ip ?? '0.0.0.0', requestId: req.id, now: new Date(now), mfaRequiredForAll: mfaRequiredForEveryone(settings, d.production) });
      if (!result.ok) return render(res, 'auth/sign-in', 401, { slug: practice.slug, error: result.message, email: form.data.email });
      const done = result.next === 'done';
      await renewSession(req, { practiceId: practice.id, userId: result.userId, stage: done ? 'signed_in' : 'password', next: result.next, createdAt: now, lastSeenAt: now, authAt: now });
      if (done) {
        await recordPasswordOnlySignIn(d.db, practice.id, result.userId, requestMeta(req, () => now));
        return res.redirect(303, `/p/${practice.slug}/home`);
      }
      res.redirect(303, result.next === 'totp' ? `/p/${practice.slug}/sign-in/code` : `/p/${practice.slug}/mfa/enroll`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/sign-in/code */
    showCode: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      if (!pending(req, practice.id, 'totp')) return res.redirect(303, `/p/${practice.slug}/sign-in`);
      render(res, 'auth/code', 200, { slug: practice.slug, error: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/sign-in/code */
    verifyCode: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const s = pending(req, practice.id, 'totp');
      if (!s) return res.redirect(303, `/p/${practice.slug}/sign-in`);
      const form = codeForm.safeParse(req.body ?? {});
      const result = form.success ? await verifySecondFactor(d, practice.id, s.userId, form.data.code, requestMeta(req, d.clock)) : { ok: false as const };
      if (!result.ok) return render(res, 'auth/code', 401, { slug: practice.slug, error: 'That code is not right (or was already used). Enter the current code from your app, or a recovery code.' });
      const now = d.clock();
      await renewSession(req, { ...s, stage: 'signed_in', next: undefined, createdAt: now, lastSeenAt: now, authAt: now });
      res.redirect(303, `/p/${practice.slug}/home`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/mfa/enroll — only reachable between the password and enrolment. */
    showEnroll: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const s = pending(req, practice.id, 'enroll');
      if (!s) return res.redirect(303, `/p/${practice.slug}/sign-in`);
      const user = await ownAccount(d.db, practice.id, s.userId);
      if (!user) return res.redirect(303, `/p/${practice.slug}/sign-in`);
      const { secret, uri } = await pendingEnrollment(d, req, practice.id, s.userId, user.email);
      render(res, 'auth/enroll', 200, { slug: practice.slug, secret, qrDataUrl: await qrDataUrl(uri), error: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/mfa/enroll */
    confirmEnroll: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      if (!practice) return renderError(res, 404);
      const s = pending(req, practice.id, 'enroll');
      const sealed = req.session?.enroll?.secret;
      if (!s || !sealed) return res.redirect(303, `/p/${practice.slug}/sign-in`);
      const secret = await openEnrollSecret(practice.id, s.userId, sealed);
      const form = codeForm.safeParse(req.body ?? {});
      const codes = form.success ? await confirmEnrollment(d, practice.id, s.userId, secret, form.data.code, requestMeta(req, d.clock), { signingIn: true }) : undefined;
      if (!codes) {
        const uri = totpUri(secret, req.session.enroll?.account ?? 'Enamel account', 'Enamel');
        return render(res, 'auth/enroll', 400, { slug: practice.slug, secret, qrDataUrl: await qrDataUrl(uri), error: 'That code is not right. Enter the 6-digit code your app shows now.' });
      }
      const now = d.clock();
      await renewSession(req, { ...s, stage: 'signed_in', next: undefined, createdAt: now, lastSeenAt: now, authAt: now });
      res.locals.csrfToken = undefined;
      res.status(200).render('auth/recovery-codes', { title: 'Your recovery codes', slug: practice.slug, codes });
    }) satisfies RequestHandler,

    /** POST /p/:slug/sign-out */
    destroy: (async (req, res) => {
      const practice = await practiceFromParams(d.db, req);
      const s = req.session?.staff;
      if (practice && s && s.practiceId === practice.id) {
        await recordSignOut(d.db, practice.id, s.userId, requestMeta(req, d.clock));
      }
      await endSession(req, res);
      res.redirect(303, practice ? `/p/${practice.slug}/sign-in?ended=signed_out` : '/');
    }) satisfies RequestHandler,
  };
}
