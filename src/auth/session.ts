import { randomBytes } from 'node:crypto';
import connectPgSimple from 'connect-pg-simple';
import type { Request, RequestHandler } from 'express';
import session, { type SessionData, type Store } from 'express-session';
import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { httpSessionWithFacts, type LoadedSessionFacts } from '../queries/session-facts.queries.js';

/**
 * Server-side sessions in PostgreSQL (every replica sees the same ones). The cookie is
 * `__Host-enamel` — Secure, HttpOnly, SameSite=Lax, path / — whenever PUBLIC_URL is https; only
 * plain-HTTP local development gets a non-Secure cookie named `enamel`. The session holds ids and
 * timestamps, never PHI.
 */
export interface StaffSession {
  practiceId: string;
  userId: string;
  /** 'password': the first factor passed; 'signed_in': all required factors passed. */
  stage: 'password' | 'signed_in';
  /** What the password step said comes next. */
  next?: 'totp' | 'enroll' | 'done';
  createdAt: number;
  lastSeenAt: number;
  /** When the user last proved password + second factor (step-up checks this). */
  authAt: number;
}

/** A platform operator's session (a separate kind of account; never together with a staff session). */
export interface OperatorSession {
  operatorId: string;
  createdAt: number;
  lastSeenAt: number;
  authAt: number;
}

/** A patient's session: one link and its tasks, 15 minutes idle (never together with a staff session). */
export interface PatientSession {
  practiceId: string;
  linkId: string;
  patientId: string;
  createdAt: number;
  lastSeenAt: number;
}

declare module 'express-session' {
  interface SessionData {
    staff?: StaffSession;
    operator?: OperatorSession;
    patient?: PatientSession;
    /** A TOTP secret being enrolled, as a base64 field envelope, until the user confirms a code. */
    enroll?: { secret: string; account: string; startedAt: number };
  }
}

/** SECURITY: a new session id at each privilege change (password step, second factor, step-up). */
export async function renewSession(req: Request, staff: StaffSession): Promise<void> {
  // CASE: a step-up keeps the form it interrupted (session-stash.ts) — the same person's, still sealed.
  const stash = req.session.staff?.userId === staff.userId ? req.session.stash : undefined;
  await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
  req.session.staff = staff;
  if (stash) req.session.stash = stash;
  await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
}

/** SECURITY: a new session id when an operator signs in; nothing of an earlier session carries over. */
export async function renewOperatorSession(req: Request, operator: OperatorSession): Promise<void> {
  await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
  req.session.operator = operator;
  await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
}

/** SECURITY: a new session id once the date of birth is proven; nothing of an earlier session carries over. */
export async function renewPatientSession(req: Request, patient: PatientSession): Promise<void> {
  await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
  req.session.patient = patient;
  await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
}

export function sessionCookieName(config: Config): string {
  return config.publicUrl.protocol === 'https:' ? '__Host-enamel' : 'enamel';
}

/** The staff session check's facts, read with the row, by the loaded session object and then by request. */
const factsBySession = new WeakMap<object, LoadedSessionFacts>();
const factsByRequest = new WeakMap<Request, LoadedSessionFacts>();

/**
 * The facts read with this request's session row (enamel_http_session, migration 25), or undefined
 * (no staff session, or a session not loaded from the store in this request). staffSession checks
 * they are for the session's own practice and user before using them.
 */
export function loadedSessionFacts(req: Request): LoadedSessionFacts | undefined {
  return factsByRequest.get(req);
}

/**
 * connect-pg-simple for writing, expiring and pruning rows; reading a row is one statement on the
 * app's pool that also reads the staff session check's facts (one round trip instead of two).
 */
export function createSessionStore(runtimeUrl: string, knex: Knex, options: { prune?: boolean } = {}): Store {
  const PgStore = connectPgSimple(session);
  class FactsStore extends PgStore {
    override get(sid: string, fn: (err: unknown, session?: SessionData | null) => void): void {
      httpSessionWithFacts(knex, sid, Date.now()).then(
        (found) => {
          if (!found || typeof found.sess !== 'object' || found.sess === null) return fn(null, null);
          if (found.facts) factsBySession.set(found.sess, found.facts);
          fn(null, found.sess as SessionData);
        },
        (err: unknown) => fn(err),
      );
    }

    override createSession(req: Request, sess: SessionData): ReturnType<Store['createSession']> {
      const facts = factsBySession.get(sess);
      if (facts) factsByRequest.set(req, facts);
      return super.createSession(req, sess);
    }
  }
  return new FactsStore({
    conObject: { connectionString: runtimeUrl, max: 4, application_name: 'enamel-sessions' },
    tableName: 'http_sessions',
    createTableIfMissing: false,
    pruneSessionInterval: options.prune === false ? false : 15 * 60,
    // NOTE: no UPDATE on every request: the row (and its expiry) is rewritten only when the session
    // changes, and staffSession changes it when the idle clock moves a minute (SESSION_TOUCH_MS).
    disableTouch: true,
  });
}

/** SECURITY: the session middleware with the cookie rules above. */
export function sessionMiddleware(config: Config, store: Store): RequestHandler {
  const secure = config.publicUrl.protocol === 'https:';
  return session({
    name: sessionCookieName(config),
    // NOTE: without SESSION_SECRET (development only) sessions last until the process restarts.
    secret: config.sessionSecret ?? randomBytes(32).toString('hex'),
    store,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    proxy: config.trustProxy !== false,
    cookie: { httpOnly: true, secure, sameSite: 'lax', path: '/' },
  });
}

/**
 * CASE: express-session writes a response's headers before its store write finishes, so a browser
 * can follow a redirect and load the next page from the session row as it was before this request
 * (seen in CI: the link created a moment ago missing from the page after the redirect). A redirect
 * from a request that changed its session therefore waits for the session to be saved first.
 * Unchanged (and uninitialised) sessions are not written.
 */
export function saveSessionBeforeRedirect(): RequestHandler {
  return (req, res, next) => {
    const before = req.session ? JSON.stringify(req.session) : undefined;
    const redirect = res.redirect.bind(res) as (...args: unknown[]) => void;
    res.redirect = ((...args: unknown[]) => {
      const sess = req.session;
      if (!sess || JSON.stringify(sess) === before) return redirect(...args);
      sess.save((err) => (err ? next(err) : redirect(...args)));
    }) as typeof res.redirect;
    next();
  };
}
