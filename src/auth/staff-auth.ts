import type { Request, RequestHandler, Response } from 'express';
import type { Clock } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import { loadedSessionFacts, type StaffSession } from './session.js';
import { formStash, putStash } from './session-stash.js';
import { formatter, type DateFormat, type Formatter } from '../presenters/format.js';
import { grantsOf, mfaRequiredFor, type StaffActor } from '../policies/actor.js';
import { withAuthorizationRecord } from '../policies/authorized.js';
import { staffSessionFacts } from '../queries/session-facts.queries.js';
import { mustReenroll } from '../queries/users.queries.js';
import { activeOperator } from '../services/operators/operators.service.js';
import { sessionLink } from '../services/links/links.service.js';
import { installationBanner, type BannerState } from '../services/alerts/alerts.service.js';

/**
 * SECURITY: whether every account of the practice needs a second factor — the practice's MFA policy,
 * which is on by default (migration 19) and can be relaxed only outside production: in production
 * it is always on, whatever the stored setting says.
 */
export function mfaRequiredForEveryone(settings: { mfa_required_for_all: boolean } | undefined, production: boolean): boolean {
  return production || (settings?.mfa_required_for_all ?? true);
}

/**
 * Session limits, checked on the server from the session's own timestamps on every request:
 * idle 30 min and absolute 12 h by default; a practice may shorten both (practice_settings),
 * never lengthen them. A deactivated user, or a session older than the user's
 * sessions_valid_after (password/MFA change), ends on the next request.
 */
export const DEFAULT_IDLE_MS = 30 * 60_000;
export const DEFAULT_ABSOLUTE_MS = 12 * 3_600_000;

/** How far the idle clock must move before the session row is rewritten. */
export const SESSION_TOUCH_MS = 60_000;

export type EndReason = 'idle' | 'absolute' | 'revoked';

/** Ends the session (server side) and clears the browser's copy. */
export async function endSession(req: Request, res: Response): Promise<void> {
  await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
  res.clearCookie(req.app.get('session cookie name') as string, { path: '/' });
  res.setHeader('Clear-Site-Data', '"cache", "cookies", "storage"');
}

/**
 * SECURITY: loads and checks the signed-in staff session for /p/:slug/... routes. When it is valid
 * and belongs to the practice in the URL, sets res.locals.actor (roles and locations read fresh, so
 * a role change applies on the holder's next request). On an expired or revoked session, ends it
 * and redirects to the sign-in page with the reason.
 */
export function staffSession(db: Db, clock: Clock, options: { mfaAlwaysRequired?: boolean } = {}): RequestHandler {
  return async (req, res, next) => {
    const s = req.session?.staff;
    if (!s) return next();
    const now = clock();
    const slug = typeof req.params.slug === 'string' && /^[a-z0-9-]{1,40}$/.test(req.params.slug) ? req.params.slug : undefined;
    const checked = await checkSession(db, req, s, now, options.mfaAlwaysRequired ?? false, slug);
    if (checked.end === 'enroll') {
      // CASE: MFA became required (practice setting or a privileged role) after this session signed in without it.
      s.stage = 'password';
      s.next = 'enroll';
    }
    if (s.stage === 'password' && s.next === 'enroll') {
      // SECURITY: until enrolled, the only pages are enrolment and sign-in/out.
      s.lastSeenAt = now;
      if (req.method === 'GET' && !req.path.startsWith('/mfa/enroll') && !req.path.startsWith('/sign-in')) return res.redirect(303, `/p/${slug ?? ''}/mfa/enroll`);
      return next();
    }
    if (checked.end) {
      await endSession(req, res);
      return res.redirect(303, slug ? `/p/${slug}/sign-in?ended=${checked.end}` : '/');
    }
    // NOTE: the session row is rewritten only when its idle clock moves by a minute or more — not on
    // every request (one write fewer per page; the idle limit keeps a one-minute granularity).
    if (now - s.lastSeenAt >= SESSION_TOUCH_MS) s.lastSeenAt = now;
    // SECURITY: a session acts only inside its own practice; elsewhere it is simply not signed in.
    if (s.stage === 'signed_in' && checked.grants && slug && checked.slugPracticeId === s.practiceId) {
      res.locals.actor = { kind: 'user', id: s.userId, practiceId: s.practiceId, slug, displayName: checked.displayName, isOwner: checked.isOwner, authAt: s.authAt, ...checked.grants };
      if (checked.fmt) res.locals.fmt = checked.fmt;
      if (checked.practiceName) res.locals.practiceName = checked.practiceName;
      // SECURITY: holders of alerts.read see a banner on every page while a warning or critical alert is open.
      if (checked.alerts) res.locals.alertBanner = checked.alerts;
      // SECURITY: the rest of this request records whether its work asked authorize() (policies/authorized.ts).
      return withAuthorizationRecord(next);
    }
    next();
  };
}

interface SessionCheck {
  end?: EndReason | 'enroll';
  grants?: Pick<StaffActor, 'permissions' | 'locations'>;
  displayName: string;
  isOwner: boolean;
  alerts?: BannerState;
  practiceName?: string;
  /** The practice's date format and time zone. */
  fmt?: Formatter;
}

/**
 * SECURITY: everything is read fresh on every request, in one statement: the user's status and
 * sessions-valid-after, the practice's limits, roles, locations, open alerts, and whether the URL's
 * slug names this active practice. Normally that statement is the one that read the session row
 * (enamel_http_session, migration 25); when the facts it read are not this session's (none were
 * read, or for another practice or user), enamel_staff_session (migration 24) reads them. Nothing
 * about a session or a role is cached across requests.
 */
async function checkSession(db: Db, req: Request, s: StaffSession, now: number, mfaAlwaysRequired: boolean, slug: string | undefined): Promise<SessionCheck & { slugPracticeId?: string }> {
  const loaded = loadedSessionFacts(req);
  const facts =
    loaded && loaded.practiceId === s.practiceId && loaded.userId === s.userId
      ? { ...loaded, slugPracticeId: slug !== undefined && loaded.practiceSlug === slug ? s.practiceId : undefined }
      : await staffSessionFacts(db.knex, s.practiceId, s.userId, slug);
  const { user, settings } = facts;
  const grants = user && user.status === 'active' ? grantsOf(user.is_owner, facts.roles, facts.locations) : undefined;
  const alerts = grants?.permissions.has('alerts.read') && s.stage === 'signed_in' && facts.alerts.count > 0 ? facts.alerts : undefined;
  const base = { displayName: user?.display_name ?? '', isOwner: Boolean(user?.is_owner) };
  if (!user || user.status !== 'active' || !grants || (user.sessions_valid_after && user.sessions_valid_after.getTime() > s.createdAt)) return { ...base, end: 'revoked' };
  const idle = Math.min(DEFAULT_IDLE_MS, (settings?.session_idle_minutes ?? 30) * 60_000);
  const absolute = Math.min(DEFAULT_ABSOLUTE_MS, (settings?.session_absolute_hours ?? 12) * 3_600_000);
  if (now - s.createdAt > absolute) return { ...base, end: 'absolute' };
  if (now - s.lastSeenAt > idle) return { ...base, end: 'idle' };
  if (s.stage === 'signed_in' && !user.mfa_enrolled_at && (mfaRequiredFor(grants.permissions, user.is_owner) || mustReenroll(user) || mfaRequiredForEveryone(settings, mfaAlwaysRequired))) return { ...base, end: 'enroll' };
  return { ...base, grants, practiceName: facts.practiceName, ...(alerts ? { alerts } : {}), ...(settings ? { fmt: formatter(settings.date_format as DateFormat, settings.timezone) } : {}), ...(facts.slugPracticeId ? { slugPracticeId: facts.slugPracticeId } : {}) };
}

/** How recent a full sign-in (or step-up) must be for sensitive actions. */
export const STEP_UP_MAX_AGE_MS = 5 * 60_000;

/**
 * SECURITY: `requireRecentAuth` — sensitive actions (exports, original downloads, user/role/MFA
 * changes, break-glass, key operations) need password + second factor within the last few
 * minutes; otherwise the user is sent to the step-up page and brought back after it.
 */
export function requireRecentAuth(clock: Clock, options: { maxAgeMs?: number; back?: (req: Request, slug: string) => string } = {}): RequestHandler {
  const maxAgeMs = options.maxAgeMs ?? STEP_UP_MAX_AGE_MS;
  return (req, res, next) => {
    const s = req.session?.staff;
    if (s && s.stage === 'signed_in' && clock() - s.authAt <= maxAgeMs) return next();
    const slug = typeof req.params.slug === 'string' ? req.params.slug : '';
    // The page to come back to: a GET of the same area. A POST is not replayed: what was typed is
    // stashed (sealed, in the session) and that page puts it back in the form (session-stash.ts).
    if (req.method === 'POST' && s?.stage === 'signed_in') putStash(req, formStash(req.path), typedFields(req.body), clock());
    const back = req.method === 'GET' ? req.originalUrl : (options.back?.(req, slug) ?? `/p/${slug}/account`);
    res.redirect(303, `/p/${slug}/step-up?next=${encodeURIComponent(back)}`);
  };
}

/** The string fields of a form body (not its CSRF token), bounded: what a step-up keeps. */
function typedFields(body: unknown): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>).slice(0, 60)) {
    if (k === '_csrf') continue;
    if (typeof v === 'string') out[k] = v.slice(0, 4000);
    else if (Array.isArray(v)) out[k] = v.filter((x): x is string => typeof x === 'string').slice(0, 50).map((x) => x.slice(0, 400));
  }
  return out;
}

/** Only a path inside this practice's area may be a return target (no open redirect). */
export function safeReturnPath(slug: string, candidate: unknown): string {
  return typeof candidate === 'string' && candidate.startsWith(`/p/${slug}/`) && /^\/[A-Za-z0-9/_-]*$/.test(candidate) ? candidate : `/p/${slug}/home`;
}

/**
 * SECURITY: the operator session for /operator/... routes: the same idle (30 min) and absolute
 * (12 h) limits, and the operator must still be active. Sets res.locals.operator when valid.
 */
export function operatorSession(db: Db, clock: Clock): RequestHandler {
  return async (req, res, next) => {
    const s = req.session?.operator;
    if (!s) return next();
    const now = clock();
    const op = await activeOperator(db, s.operatorId, s.createdAt);
    const end: EndReason | undefined = !op ? 'revoked' : now - s.createdAt > DEFAULT_ABSOLUTE_MS ? 'absolute' : now - s.lastSeenAt > DEFAULT_IDLE_MS ? 'idle' : undefined;
    if (end) {
      await endSession(req, res);
      return res.redirect(303, `/operator/sign-in?ended=${end}`);
    }
    if (now - s.lastSeenAt >= SESSION_TOUCH_MS) s.lastSeenAt = now;
    res.locals.operator = { kind: 'operator', id: op!.id, email: op!.email, displayName: op!.display_name };
    // SECURITY: the installation's open warning or critical alerts show on every console page.
    const banner = await installationBanner(db, op!);
    if (banner) res.locals.alertBanner = { ...banner, operator: true };
    next();
  };
}

/**
 * SECURITY: the operators' step-up: terminate, suspend, settings, operator deactivation and
 * access-review decisions need password + code within the last few minutes.
 */
export function requireOperatorRecentAuth(clock: Clock, options: { back: (req: Request) => string }): RequestHandler {
  return (req, res, next) => {
    const s = req.session?.operator;
    if (s && clock() - s.authAt <= STEP_UP_MAX_AGE_MS) return next();
    res.redirect(303, `/operator/step-up?next=${encodeURIComponent(req.method === 'GET' ? req.originalUrl : options.back(req))}`);
  };
}

/** Only a console path may be an operator's return target (no open redirect). */
export function safeOperatorReturnPath(candidate: unknown): string {
  return typeof candidate === 'string' && candidate.startsWith('/operator/') && /^\/[A-Za-z0-9/_-]*$/.test(candidate) ? candidate : '/operator';
}

/** A patient session ends after 15 minutes without activity. */
export const PATIENT_IDLE_MS = 15 * 60_000;

/**
 * SECURITY: the patient session for /portal routes: 15 minutes idle, and the link must still be
 * usable (a revoked, expired or locked link ends it). Sets res.locals.patientLink when valid.
 */
export function patientSession(db: Db, clock: Clock): RequestHandler {
  return async (req, res, next) => {
    const s = req.session?.patient;
    if (!s) return next();
    const now = clock();
    const found = now - s.lastSeenAt > PATIENT_IDLE_MS ? undefined : await sessionLink(db, s.practiceId, s.linkId, new Date(now));
    if (!found) {
      await endSession(req, res);
      return res.redirect(303, '/portal/ended');
    }
    if (now - s.lastSeenAt >= SESSION_TOUCH_MS) s.lastSeenAt = now;
    const { link, brand } = found;
    res.locals.patientLink = { practiceId: s.practiceId, linkId: s.linkId, patientId: s.patientId, tasks: link.tasks, planId: link.plan_id, formTemplateIds: link.form_template_ids };
    // The practice's name, phone and logo head every patient page; its dates read in its format.
    if (brand) {
      res.locals.brand = brand;
      res.locals.fmt = brand.fmt;
    }
    next();
  };
}
