import type { Request, RequestHandler, Response } from 'express';
import { renewOperatorSession } from '../auth/session.js';
import { endSession, safeOperatorReturnPath } from '../auth/staff-auth.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import {
  createPractice,
  directory,
  grantOperatorAccess,
  listGrants,
  MAX_GRANT_HOURS,
  practiceOverview,
  revokeOperatorAccess,
  setPracticeStatus,
  updatePracticeSettings,
  recentJobRuns,
  terminatePractice,
} from '../services/operators/operators.service.js';
import { deactivateOperator, operatorAccounts, operatorSignedOut, operatorSignIn, operatorStepUp, reactivateOperator } from '../services/operators/operator-accounts.service.js';
import { decideInstallationItem, installationReview, installationReviewOfItem, installationReviews, signOffInstallationReview, startInstallationReview } from '../services/operators/operator-reviews.service.js';
import { acknowledgeInstallationAlert, installationAlerts } from '../services/alerts/alerts.service.js';
import { backupsOverview } from '../services/operators/backups.service.js';
import { ALERT_LABELS, INSTALLATION_ALERT_KINDS, SEVERITIES } from '../alerts/alerts.js';
import { acknowledgeForm, alertFilterQuery } from '../validation/alerts.schema.js';
import { formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import { newPracticeForm, operatorDecisionForm, operatorGrantForm, operatorSignInForm, operatorStepUpForm, practiceSettingsForm, practiceStatusForm, signOffNameForm, terminateForm } from '../validation/operator.schema.js';
import { idParams } from '../validation/ids.js';
import { AccessDenied } from '../policies/index.js';
import { firstError } from '../validation/text.js';
import { actorOf, idOf, requestMeta, restoredForm, RESTORED_NOTICE, operatorOf } from './request.js';

export interface OperatorsControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  publicUrl: URL;
  /** Where backups go and whether they (and the drill) can run: the Backups page. */
  backups: { dir: string; keep: number; maxAgeDays: number; configured: boolean; drillConfigured: boolean };
}

const practiceId = (req: Request): string => idOf(req, 'practice');

const ENDED: Record<string, string> = {
  idle: 'You were signed out after a period without activity.',
  absolute: 'Your session reached its maximum length.',
  revoked: 'Your session was ended.',
  signed_out: 'You are signed out.',
};

/** The operator console: sign-in, practice directory, new practice, status and settings. No PHI. */
export function operatorsController(d: OperatorsControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const signInPage = (res: Response, status: number, view: { error?: string; notice?: string; email?: string }) =>
    res.status(status).render('operator/sign-in', { title: 'Operator sign-in', csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, email: '', ...view });
  const showPractice = async (req: Request, res: Response, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string }) => {
    const op = operatorOf(res);
    const overview = await practiceOverview(d.db, op, practiceId(req), meta(req));
    // A re-rendered form keeps what was typed in it.
    const b = (req.method === 'POST' ? (req.body ?? {}) : {}) as Record<string, unknown>;
    const typed = Object.fromEntries(Object.entries(b).filter(([k, v]) => k !== '_csrf' && typeof v === 'string').map(([k, v]) => [k, (v as string).slice(0, 60)]));
    res.status(status).render('operator/practice', { title: overview.practice.name, operator: op, overview, typed, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: undefined, ...extra });
  };

  const alertsPage = async (req: Request, res: Response, status: number, extra: { error?: string; errorFor?: string; notice?: string; note?: string } = {}) => {
    const op = operatorOf(res);
    const filter = alertFilterQuery.parse(req.query ?? {});
    const alerts = await installationAlerts(d, op, { ...(filter.state === 'all' ? {} : { state: filter.state }), ...(filter.kind ? { kind: filter.kind } : {}), ...(filter.severity ? { severity: filter.severity } : {}) }, meta(req));
    res.status(status).render('operator/alerts', { title: 'Installation alerts', operator: op, alerts, filter, kinds: INSTALLATION_ALERT_KINDS, labels: ALERT_LABELS, severities: SEVERITIES, action: (id: string) => `/operator/alerts/${id}/acknowledge`, csrfToken: res.locals.csrfToken, error: undefined, errorFor: undefined, notice: undefined, note: '', ...extra });
  };
  const operatorsPage = async (res: Response, status: number, extra: { error?: string; notice?: string }) => {
    const op = operatorOf(res);
    res.status(status).render('operator/operators', { title: 'Operators', operator: op, operators: await operatorAccounts(d.db, op), csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, ...extra });
  };
  /** `:id` of an operator account; a malformed one is the not-found page. */
  const targetOperator = (req: Request): string => {
    const p = idParams.safeParse(req.params);
    if (!p.success) throw new AccessDenied({ resource: { type: 'operator' } });
    return p.data.id;
  };
  const reviewPage = async (_req: Request, res: Response, id: string, status: number, extra: { error?: string; notice?: string } = {}) => {
    const op = operatorOf(res);
    res.status(status).render('operator/review', { title: 'Operator access review', operator: op, review: await installationReview(d.db, op, id, new Date(d.clock())), csrfToken: res.locals.csrfToken, error: undefined, notice: undefined, ...extra });
  };

  return {
    /** GET /operator/sign-in */
    showSignIn: (async (req, res) => {
      if (res.locals.operator) return res.redirect(303, '/operator');
      signInPage(res, 200, { notice: typeof req.query.ended === 'string' ? ENDED[req.query.ended] : undefined });
    }) satisfies RequestHandler,

    /** POST /operator/sign-in — email, password and TOTP code together. */
    signIn: (async (req, res) => {
      const form = operatorSignInForm.safeParse(req.body ?? {});
      const email = typeof (req.body as { email?: unknown } | undefined)?.email === 'string' ? String((req.body as { email: string }).email).slice(0, 254) : '';
      if (!form.success) return signInPage(res, 400, { error: 'Enter your email address, password and the 6-digit code from your app.', email });
      const now = d.clock();
      const result = await operatorSignIn(d.db, d.keyring.provider, { ...form.data, ip: req.ip ?? '0.0.0.0', requestId: req.id, now: new Date(now) });
      if (!result.ok) return signInPage(res, 401, { error: result.message, email });
      await renewOperatorSession(req, { operatorId: result.operatorId, createdAt: now, lastSeenAt: now, authAt: now });
      res.redirect(303, '/operator');
    }) satisfies RequestHandler,

    /** POST /operator/sign-out */
    signOut: (async (req, res) => {
      const s = req.session?.operator;
      if (s) await operatorSignedOut(d.db, s.operatorId, meta(req));
      await endSession(req, res);
      res.redirect(303, '/operator/sign-in?ended=signed_out');
    }) satisfies RequestHandler,

    /** GET /operator — the practice directory. */
    index: (async (_req, res) => {
      res.render('operator/index', { title: 'Practices', operator: operatorOf(res), practices: await directory(d.db), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /operator/practices/new */
    new: (async (_req, res) => {
      res.render('operator/new-practice', { title: 'New practice', operator: operatorOf(res), form: { name: '', slug: '', locationName: '', phone: '', ownerName: '', ownerEmail: '' }, csrfToken: res.locals.csrfToken, error: undefined, errors: {} });
    }) satisfies RequestHandler,

    /** POST /operator/practices */
    create: (async (req, res) => {
      const op = operatorOf(res);
      const b = (req.body ?? {}) as Record<string, unknown>;
      const echo = Object.fromEntries(['name', 'slug', 'locationName', 'phone', 'ownerName', 'ownerEmail'].map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 254) : '']));
      const parsed = newPracticeForm.safeParse(b);
      const again = (status: number, problems: FormProblems) => res.status(status).render('operator/new-practice', { title: 'New practice', operator: op, form: echo, csrfToken: res.locals.csrfToken, ...problems });
      if (!parsed.success) return again(400, formProblems(parsed.error));
      const result = await createPractice(d.db, op, parsed.data, meta(req));
      if (!result.ok) return again(409, resultProblems(result));
      const link = new URL(`/p/${parsed.data.slug}/invitations/${result.value.invitationToken}`, d.publicUrl).toString();
      res.status(201).render('operator/created', { title: 'Practice created', operator: op, slug: parsed.data.slug, ownerEmail: parsed.data.ownerEmail, link, expiresAt: result.value.expiresAt, practiceId: result.value.practiceId });
    }) satisfies RequestHandler,

    /** GET /operator/practices/:id */
    show: (async (req, res) => showPractice(req, res, 200, { notice: req.query.saved === '1' ? 'Saved.' : undefined })) satisfies RequestHandler,

    /** POST /operator/practices/:id/status */
    status: (async (req, res) => {
      const id = practiceId(req);
      const parsed = practiceStatusForm.safeParse(req.body ?? {});
      if (!parsed.success) return showPractice(req, res, 400, { error: firstError(parsed.error) });
      await setPracticeStatus(d.db, operatorOf(res), id, parsed.data.status, meta(req));
      res.redirect(303, `/operator/practices/${id}?saved=1`);
    }) satisfies RequestHandler,

    /** POST /operator/practices/:id/terminate — the tail, and the practice's address typed to confirm. */
    terminate: (async (req, res) => {
      const id = practiceId(req);
      const parsed = terminateForm.safeParse(req.body ?? {});
      if (!parsed.success) return showPractice(req, res, 400, formProblems(parsed.error));
      const slug = (await practiceOverview(d.db, operatorOf(res), id, meta(req))).practice.slug;
      if (parsed.data.confirmSlug !== slug) return showPractice(req, res, 400, resultProblems({ error: `Type the practice’s address (${slug}) to confirm.`, field: 'confirmSlug' }));
      const result = await terminatePractice(d.db, operatorOf(res), id, parsed.data.tailDays, meta(req));
      if (!result.ok) return showPractice(req, res, 409, { error: result.error });
      res.redirect(303, `/operator/practices/${id}?saved=1`);
    }) satisfies RequestHandler,

    /** GET /operator/jobs — the scheduler's recent runs. */
    /** GET /operator/backups — the backups in BACKUP_DIR and the restore drills (RPO, RTO, outcome). */
    backups: (async (_req, res) => {
      res.render('operator/backups', { title: 'Backups', operator: operatorOf(res), overview: await backupsOverview(d.db, operatorOf(res), d.backups), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    jobs: (async (_req, res) => {
      res.render('operator/jobs', { title: 'Scheduled jobs', operator: operatorOf(res), runs: await recentJobRuns(d.db), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /operator/practices/:id/settings — the retention settings (behind operator step-up). */
    settings: (async (req, res) => {
      const id = practiceId(req);
      const parsed = practiceSettingsForm.safeParse(req.body ?? {});
      if (!parsed.success) return showPractice(req, res, 400, formProblems(parsed.error));
      await updatePracticeSettings(d.db, operatorOf(res), id, parsed.data, meta(req));
      res.redirect(303, `/operator/practices/${id}?saved=1`);
    }) satisfies RequestHandler,

    /** GET /operator/step-up */
    showStepUp: (async (req, res) => {
      res.render('operator/step-up', { title: 'Confirm it is you', operator: operatorOf(res), next: safeOperatorReturnPath(req.query.next), csrfToken: res.locals.csrfToken, error: undefined });
    }) satisfies RequestHandler,

    /** POST /operator/step-up — password and a fresh code; then back to where the operator was. */
    confirmStepUp: (async (req, res) => {
      const op = operatorOf(res);
      const form = operatorStepUpForm.safeParse(req.body ?? {});
      const next = safeOperatorReturnPath(form.success ? form.data.next : undefined);
      const ok = form.success && (await operatorStepUp(d.db, d.keyring.provider, op.id, form.data, meta(req)));
      if (!ok) return res.status(401).render('operator/step-up', { title: 'Confirm it is you', operator: op, next, csrfToken: res.locals.csrfToken, error: 'That did not match. Enter your password and the current code from your app.' });
      const now = d.clock();
      await renewOperatorSession(req, { ...req.session.operator!, lastSeenAt: now, authAt: now });
      res.redirect(303, next);
    }) satisfies RequestHandler,

    /** GET /operator/operators — every operator account. */
    operators: (async (req, res) => operatorsPage(res, 200, req.query.done === 'deactivated' ? { notice: 'Deactivated: their sessions ended and their password and authenticator no longer work.' } : {})) satisfies RequestHandler,

    /** POST /operator/operators/:id/deactivate — behind operator step-up. */
    deactivate: (async (req, res) => {
      const result = await deactivateOperator(d.db, d.keyring.provider, { kind: 'operator', id: operatorOf(res).id }, targetOperator(req), meta(req));
      if (!result.ok) return operatorsPage(res, 409, { error: result.error });
      res.redirect(303, '/operator/operators?done=deactivated');
    }) satisfies RequestHandler,

    /** POST /operator/operators/:id/reactivate — behind operator step-up; shows the new credentials once. */
    reactivate: (async (req, res) => {
      const op = operatorOf(res);
      const result = await reactivateOperator(d.db, d.keyring.provider, { kind: 'operator', id: op.id }, targetOperator(req), meta(req));
      if (!result.ok) return operatorsPage(res, 409, { error: result.error });
      res.render('operator/reactivated', { title: 'Operator reactivated', operator: op, credentials: result.value, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /operator/alerts — the installation's alerts. */
    alerts: (async (req, res) => alertsPage(req, res, 200, req.query.done === 'acknowledged' ? { notice: 'Acknowledged. The note is kept with the alert.' } : {})) satisfies RequestHandler,

    /** POST /operator/alerts/:id/acknowledge */
    acknowledge: (async (req, res) => {
      const p = idParams.safeParse(req.params);
      if (!p.success) throw new AccessDenied({ resource: { type: 'security_alert' } });
      const form = acknowledgeForm.safeParse(req.body ?? {});
      const typed = typeof (req.body as { note?: unknown } | undefined)?.note === 'string' ? String((req.body as { note: string }).note).slice(0, 500) : '';
      if (!form.success) return alertsPage(req, res, 400, { error: firstError(form.error), errorFor: p.data.id, note: typed });
      const result = await acknowledgeInstallationAlert(d, operatorOf(res), p.data.id, form.data.note, meta(req));
      if (!result.ok) return alertsPage(req, res, 409, { error: result.error });
      res.redirect(303, '/operator/alerts?done=acknowledged');
    }) satisfies RequestHandler,

    /** GET /operator/access-reviews */
    reviews: (async (req, res) => {
      const op = operatorOf(res);
      res.render('operator/reviews', { title: 'Operator access reviews', operator: op, reviews: await installationReviews(d.db, op, new Date(d.clock())), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /operator/access-reviews — start one now. */
    startReview: (async (req, res) => {
      const id = await startInstallationReview(d.db, operatorOf(res), meta(req));
      res.redirect(303, `/operator/access-reviews/${id}`);
    }) satisfies RequestHandler,

    /** GET /operator/access-reviews/:id */
    review: (async (req, res) => reviewPage(req, res, idOf(req, 'access_review'), 200, req.query.done === '1' ? { notice: 'Saved.' } : {})) satisfies RequestHandler,

    /** POST /operator/access-review-items/:id — keep or revoke (behind operator step-up). */
    decide: (async (req, res) => {
      const op = operatorOf(res);
      const itemId = idOf(req, 'access_review');
      const form = operatorDecisionForm.safeParse(req.body ?? {});
      if (!form.success) return reviewPage(req, res, await installationReviewOfItem(d.db, op, itemId), 400, { error: firstError(form.error) });
      const result = await decideInstallationItem(d.db, d.keyring.provider, op, itemId, form.data.decision, meta(req));
      if (result.error) return reviewPage(req, res, result.reviewId, 409, { error: result.error });
      res.redirect(303, `/operator/access-reviews/${result.reviewId}?done=1`);
    }) satisfies RequestHandler,

    /** POST /operator/access-reviews/:id/sign-off */
    signOff: (async (req, res) => {
      const id = idOf(req, 'access_review');
      const form = signOffNameForm.safeParse(req.body ?? {});
      if (!form.success) return reviewPage(req, res, id, 400, { error: firstError(form.error) });
      const result = await signOffInstallationReview(d.db, operatorOf(res), id, form.data.name, meta(req));
      if (!result.ok) return reviewPage(req, res, id, 409, { error: result.error });
      res.redirect(303, `/operator/access-reviews/${id}?done=1`);
    }) satisfies RequestHandler,

    // ——— the practice side ———

    /** GET /p/:slug/operator-access */
    grants: (async (req, res) => {
      const actor = actorOf(res);
      const typed = restoredForm(req, `/p/${actor.slug}/operator-access`, d.clock);
      const notice = typed ? RESTORED_NOTICE : req.query.done === 'granted' ? 'Access granted. It ends by itself; you can revoke it sooner.' : req.query.done === 'revoked' ? 'Access revoked.' : undefined;
      const form = typed ? { operatorEmail: typed.text('operatorEmail', 254), caseReference: typed.text('caseReference', 40), hours: typed.text('hours', 4) } : { operatorEmail: '', caseReference: '', hours: '4' };
      res.render('operator/grants', { title: 'Operator access', slug: actor.slug, actor, grants: await listGrants(d.db, actor, new Date(d.clock())), maxHours: MAX_GRANT_HOURS, form, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice });
    }) satisfies RequestHandler,

    /** POST /p/:slug/operator-access — behind step-up. */
    grant: (async (req, res) => {
      const actor = actorOf(res);
      const b = (req.body ?? {}) as Record<string, unknown>;
      const echo = { operatorEmail: typeof b.operatorEmail === 'string' ? b.operatorEmail.slice(0, 254) : '', caseReference: typeof b.caseReference === 'string' ? b.caseReference.slice(0, 40) : '', hours: typeof b.hours === 'string' ? b.hours.slice(0, 4) : '' };
      const parsed = operatorGrantForm.safeParse(b);
      const result = parsed.success ? await grantOperatorAccess(d.db, actor, parsed.data, meta(req)) : undefined;
      if (result?.ok) return res.redirect(303, `/p/${actor.slug}/operator-access?done=granted`);
      const problems = result ? resultProblems(result) : formProblems(parsed.error!);
      res.status(400).render('operator/grants', { title: 'Operator access', slug: actor.slug, actor, grants: await listGrants(d.db, actor, new Date(d.clock())), maxHours: MAX_GRANT_HOURS, form: echo, csrfToken: res.locals.csrfToken, ...problems, notice: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/operator-access/:id/revoke */
    revoke: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'operator_grant');
      await revokeOperatorAccess(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/operator-access?done=revoked`);
    }) satisfies RequestHandler,
  };
}
