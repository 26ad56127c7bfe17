import type { RequestHandler } from 'express';
import { csrfSync } from 'csrf-sync';

/**
 * SECURITY: synchroniser-token CSRF protection (csrf-sync, the maintained successor of csurf) on
 * every state-changing request. The token lives in the server session and must come back in the
 * form field `_csrf` (or the `x-csrf-token` header). A missing or wrong token is a 403 and changes
 * nothing. NOTE: multipart routes must parse (with strict limits) before this check runs.
 */
const { csrfSynchronisedProtection, generateToken } = csrfSync({
  getTokenFromRequest: (req) => (req.body as Record<string, unknown> | undefined)?._csrf as string | undefined ?? req.get('x-csrf-token'),
  errorConfig: { statusCode: 403, message: 'invalid csrf token', code: 'EBADCSRFTOKEN' },
});

/**
 * The check; once it passes, the page this request renders (a form again, with its errors) carries
 * the token too, so a person can correct the form and send it again.
 */
export const csrfProtection: RequestHandler = (req, res, next) => {
  csrfSynchronisedProtection(req, res, (err?: unknown) => {
    if (!err) res.locals.csrfToken = generateToken(req);
    next(err);
  });
};

/** Puts a token in res.locals.csrfToken for the forms of this page (creating the session if needed). */
export const csrfToken: RequestHandler = (req, res, next) => {
  res.locals.csrfToken = generateToken(req);
  next();
};
