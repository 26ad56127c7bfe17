import express, { type Express } from 'express';
import type { Config } from './config/env.js';
import type { Logger } from './config/logger.js';
import { publicDir, viewsDir } from './config/paths.js';
import type { Db } from './db/tenant.js';
import { accessDenied } from './middleware/access-denied.js';
import { errorHandler, notFound } from './middleware/errors.js';
import { requestContext } from './middleware/request-context.js';
import { cspNonce, hsts, noStore, permissionsPolicy, refuseTrace, securityHeaders } from './middleware/security-headers.js';
import { buildRouter } from './routes/index.js';
import { saveSessionBeforeRedirect, sessionCookieName, sessionMiddleware } from './auth/session.js';
import { operatorSession, patientSession, staffSession } from './auth/staff-auth.js';
import type { Clock } from './shared/types.js';
import type { Keyring } from './crypto/keyring.js';
import type { Store } from 'express-session';
import type { FileStore } from './storage/file-store.js';
import { fileUrlKey } from './uploads/signed-urls.js';
import { dummyHash } from './auth/password-hash.js';
import { formatter } from './presenters/format.js';
import { setStashKey, stashKey } from './auth/session-stash.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  db: Db;
  keyring: Keyring;
  sessionStore: Store;
  /** Encrypted file blobs (documents and images). */
  files: FileStore;
  /** Milliseconds since the epoch; tests pass a controllable clock. */
  clock?: Clock;
}

/** Builds the Express app. The middleware order below is the security model's order; keep it on one screen. */
export function createApp({ config, logger, db, keyring, sessionStore, files, clock = Date.now }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.set('view engine', 'ejs');
  app.set('views', viewsDir);
  // NOTE: compiled templates are kept in every environment (compiling per request cost ~15 % of a
  // chart page, bench/chart.ts); restart the server after editing a view.
  app.set('view cache', true);
  app.locals.publicUrl = config.publicUrl.toString();
  // SECURITY: the unknown-account path's argon2 hash exists before the first sign-in, so no first answer is slower (V6.3.8).
  void dummyHash();

  app.use(requestContext(logger, { trustIncomingId: config.trustProxy !== false })); // 1. request id + access log
  app.use(refuseTrace); //                                                             2. no TRACE/TRACK
  app.use((_req, res, next) => { res.locals.fmt = formatter(); next(); }); //            (dates: UTC ISO until a practice says otherwise)
  app.use(cspNonce, securityHeaders({ https: config.publicUrl.protocol === 'https:' }), hsts, permissionsPolicy); // 3. headers
  app.use('/static', express.static(publicDir, { index: false, dotfiles: 'ignore', maxAge: '1h', fallthrough: true })); // 4. assets (cacheable)
  app.use(noStore); //                                                                  5. everything else: no-store
  app.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 200 })); // 6. form bodies, bounded
  app.set('session cookie name', sessionCookieName(config));
  setStashKey(app, stashKey(config.sessionSecret));
  app.use(sessionMiddleware(config, sessionStore)); //                                  7. server-side session
  app.use(saveSessionBeforeRedirect()); //                                                 … saved before a redirect is sent
  app.use('/p/:slug', staffSession(db, clock, { mfaAlwaysRequired: config.isProduction })); // 8. session limits, revocation, MFA
  app.use('/operator', operatorSession(db, clock)); //                                    (operators: the same limits)
  app.use('/portal', patientSession(db, clock)); //                                       (patients: 15 min, one link)
  app.use(buildRouter({ config, db, keyring, clock, files, fileUrlKey: fileUrlKey(config.sessionSecret) })); //                              9. the route table (CSRF per route)
  app.use(notFound); //                                                                10. 404 page
  app.use(accessDenied(db)); //                                                        11. refusals: audited, shown as 404
  app.use(errorHandler); //                                                            12. generic error page
  return app;
}
