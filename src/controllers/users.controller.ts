import type { Request, RequestHandler, Response } from 'express';
import type { Clock, Meta } from '../shared/types.js';
import {
  accessChoices,
  deactivateUser,
  endAllSessions,
  endUserSessions,
  inviteUser,
  reactivateUser,
  unlockUser,
  reinviteUser,
  resetUserMfa,
  updateAccess,
  userDetail,
  usersOverview,
} from '../services/users/users.service.js';
import { accessForm, inviteForm } from '../validation/users.schema.js';
import { formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import type { Db } from '../db/tenant.js';
import { isUuid } from '../validation/ids.js';
import { actorOf, idOf, requestMeta, restoredForm, RESTORED_NOTICE } from './request.js';

export interface UsersControllerDeps {
  db: Db;
  clock: Clock;
  publicUrl: URL;
}

export const DONE_NOTICES: Record<string, string> = {
  access: 'Roles and locations saved. They apply from this person’s next click.',
  deactivated: 'The account is deactivated: its sessions have ended, its authenticator and recovery codes are destroyed, and the invitations and patient links it had sent and that were still open are revoked.',
  reactivated: 'The account is active again. They set up two-step sign-in again at their next sign-in.',
  unlocked: 'Sign-in is unlocked. The failed attempts are still in the audit log.',
  sessions: 'All of this person’s sessions have ended.',
  mfa: 'Two-step sign-in was reset. This person must set it up again at their next sign-in.',
};

/** Staff accounts: the users overview, invitations, access changes, deactivation, sessions, MFA reset. */
export function usersController(d: UsersControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const invitationUrl = (slug: string, token: string): string => new URL(`/p/${slug}/invitations/${token}`, d.publicUrl).toString();

  const showDetail = async (req: Request, res: Response, id: string, status: number, extra: { error?: string; errors?: Record<string, string>; notice?: string; inviteLink?: string } = {}) => {
    const actor = actorOf(res);
    const [user, choices] = await Promise.all([userDetail(d.db, actor, id, meta(req)), accessChoices(d.db, actor)]);
    res.status(status).render('users/show', { title: user.displayName, slug: actor.slug, actor, user, choices, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: undefined, inviteLink: undefined, ...extra });
  };

  return {
    /** GET /p/:slug/users */
    index: (async (req, res) => {
      const actor = actorOf(res);
      const users = await usersOverview(d.db, actor, meta(req));
      const ended = typeof req.query.ended === 'string' && /^\d{1,6}$/.test(req.query.ended) ? `${req.query.ended} session(s) ended. Everyone else signs in again.` : undefined;
      res.render('users/index', { title: 'Users', slug: actor.slug, actor, users, now: d.clock(), notice: ended, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /p/:slug/users/new */
    new: (async (req, res) => {
      const actor = actorOf(res);
      const choices = await accessChoices(d.db, actor);
      const singleLocation = choices.locations.length === 1 ? [choices.locations[0]!.id] : [];
      // CASE: back from the step-up the invitation asked for.
      const typed = restoredForm(req, `/p/${actor.slug}/users`, d.clock);
      const form = typed ? { displayName: typed.text('displayName', 120), email: typed.text('email', 254), roleIds: typed.list('roleIds'), locationIds: typed.list('locationIds') } : { displayName: '', email: '', roleIds: [], locationIds: singleLocation };
      res.render('users/new', { title: 'Invite someone', slug: actor.slug, actor, choices, form, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: typed ? RESTORED_NOTICE : undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/users */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const parsed = inviteForm.safeParse(req.body ?? {});
      const raw = (req.body ?? {}) as Record<string, unknown>;
      const again = async (status: number, problems: FormProblems) => {
        const choices = await accessChoices(d.db, actor);
        const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, 254) : '');
        const ids = (v: unknown) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && isUuid(x));
        const form = parsed.success ? parsed.data : { displayName: text(raw.displayName), email: text(raw.email), roleIds: ids(raw.roleIds), locationIds: ids(raw.locationIds) };
        res.status(status).render('users/new', { title: 'Invite someone', slug: actor.slug, actor, choices, form, csrfToken: res.locals.csrfToken, ...problems });
      };
      if (!parsed.success) return again(400, formProblems(parsed.error));
      const result = await inviteUser(d.db, actor, parsed.data, meta(req));
      if (!result.ok) return again(result.refused ? 403 : 400, resultProblems(result));
      res.status(201).render('users/invited', { title: 'Invitation ready', slug: actor.slug, actor, email: parsed.data.email, link: invitationUrl(actor.slug, result.value.token), expiresAt: result.value.expiresAt, userId: result.value.userId });
    }) satisfies RequestHandler,

    /** GET /p/:slug/users/:id */
    show: (async (req, res) => {
      const done = typeof req.query.done === 'string' ? DONE_NOTICES[req.query.done] : undefined;
      await showDetail(req, res, idOf(req, 'user'), 200, { notice: done });
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/access — roles and locations. */
    updateAccess: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      const parsed = accessForm.safeParse(req.body ?? {});
      if (!parsed.success) return showDetail(req, res, id, 400, formProblems(parsed.error));
      const result = await updateAccess(d.db, actor, id, parsed.data, meta(req));
      if (!result.ok) return showDetail(req, res, id, result.refused ? 403 : 400, resultProblems(result));
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=access`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/deactivate */
    deactivate: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      await deactivateUser(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=deactivated`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/reactivate */
    reactivate: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      const result = await reactivateUser(d.db, actor, id, meta(req));
      if (!result.ok) return showDetail(req, res, id, 409, { error: result.error });
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=reactivated`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/unlock — lift a sign-in lock early (behind step-up). */
    unlock: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      const result = await unlockUser(d.db, actor, id, meta(req));
      if (!result.ok) return showDetail(req, res, id, 409, { error: result.error });
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=unlocked`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/sessions/end */
    endSessions: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      await endUserSessions(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=sessions`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/mfa/reset — behind requireRecentAuth. */
    resetMfa: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      await resetUserMfa(d.db, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/users/${id}?done=mfa`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/sessions/end — everyone's sessions but the administrator's own. */
    endAllSessions: (async (req, res) => {
      const actor = actorOf(res);
      const ended = await endAllSessions(d.db, actor, req.sessionID, meta(req));
      res.redirect(303, `/p/${actor.slug}/users?ended=${ended}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/users/:id/invitation — a fresh link for someone who has not accepted yet. */
    reinvite: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'user');
      const result = await reinviteUser(d.db, actor, id, meta(req));
      if (!result.ok) return showDetail(req, res, id, 409, { error: result.error });
      await showDetail(req, res, id, 200, { notice: 'A new invitation link is below; the previous one no longer works.', inviteLink: invitationUrl(actor.slug, result.value.token) });
    }) satisfies RequestHandler,
  };
}
