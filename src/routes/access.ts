import type { RequestHandler } from 'express';
import { permission, type Permission } from '../permissions.js';
import { isUuid } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import type { LinkTask } from '../links/tasks.js';

/**
 * Every route declares who may reach it: the first handler of each route is an access marker —
 * `publicRoute(reason)`, `signedInRoute()` or `requirePermission(name)`.
 * test/http/route-inventory.test.ts walks the router and fails on any route whose first handler is
 * not a marker. The markers read res.locals.actor, which auth/staff-auth.ts sets only for a valid
 * session of the practice in the URL.
 */
export const ACCESS = Symbol('enamel.access');

export type Access = { kind: 'public'; reason: string } | { kind: 'signed_in' } | { kind: 'permission'; permission: Permission; or?: readonly Permission[] } | { kind: 'operator' } | { kind: 'patient_link' } | { kind: 'webhook'; reason: string };

export type AccessMarker = RequestHandler & { [ACCESS]: Access };

const mark = (handler: RequestHandler, access: Access): AccessMarker => Object.assign(handler, { [ACCESS]: access });

/** Not signed in (for this practice): to the practice's sign-in page. */
const toSignIn: RequestHandler = (req, res) => {
  const slug = typeof req.params.slug === 'string' && /^[a-z0-9-]{1,40}$/.test(req.params.slug) ? req.params.slug : undefined;
  res.redirect(303, slug ? `/p/${slug}/sign-in` : '/');
};

/** SECURITY: marks a route as reachable without signing in; the reason is read in review. */
export function publicRoute(reason: string): AccessMarker {
  if (reason.trim().length < 10) throw new Error('publicRoute: say why the route is public');
  return mark((_req, _res, next) => next(), { kind: 'public', reason });
}

/** SECURITY: the route needs a fully signed-in staff session of the practice in the URL, and nothing more. */
export function signedInRoute(): AccessMarker {
  return mark((req, res, next) => (res.locals.actor ? next() : toSignIn(req, res, next)), { kind: 'signed_in' });
}

/**
 * SECURITY: the route needs a signed-in staff member holding `name` (an unknown name throws here,
 * when the route table is built), or any of `options.or` (the service then checks which records
 * each one opens). A refusal is the not-found page plus an audited denial.
 */
export function requirePermission(name: Permission, options: { patientRoute?: boolean; or?: readonly Permission[] } = {}): AccessMarker {
  const needed = permission(name);
  const others = (options.or ?? []).map(permission);
  return mark(
    (req, res, next) => {
      const actor = res.locals.actor;
      if (!actor) return toSignIn(req, res, next);
      if (!actor.permissions.has(needed) && !others.some((o) => actor.permissions.has(o))) {
        // A refusal on a patient's page names the patient, so it shows in that patient's access history.
        const id = options.patientRoute && isUuid(req.params.id) ? req.params.id : undefined;
        return next(new AccessDenied({ permission: needed, ...(id ? { resource: { type: 'patient', id }, patientId: id } : {}) }));
      }
      next();
    },
    others.length > 0 ? { kind: 'permission', permission: needed, or: others } : { kind: 'permission', permission: needed },
  );
}

/**
 * SECURITY: the route is for a signed-in platform operator (practice management, no PHI). Staff
 * sessions never satisfy it, and operator sessions never satisfy the staff markers.
 */
export function operatorRoute(): AccessMarker {
  return mark((_req, res, next) => (res.locals.operator ? next() : res.redirect(303, '/operator/sign-in')), { kind: 'operator' });
}

/**
 * SECURITY: a provider's callback: no session and no CSRF token (the route-inventory test exempts
 * only these from the CSRF check); the handler must check the provider's signature first.
 */
export function webhookRoute(reason: string): AccessMarker {
  if (reason.trim().length < 10) throw new Error('webhookRoute: say what checks the caller');
  return mark((_req, _res, next) => next(), { kind: 'webhook', reason });
}

/**
 * SECURITY: the route is for a patient who proved their date of birth on one link; with a task, the
 * link must carry that task (plan review, forms, uploads) — another task is refused like a missing
 * page, and the refusal is audited as the link.
 */
export function patientLinkRoute(task?: LinkTask): AccessMarker {
  return mark(
    (_req, res, next) => {
      const link = res.locals.patientLink;
      if (!link) return res.redirect(303, '/portal/ended');
      if (task && !link.tasks.includes(task)) return next(new AccessDenied({ resource: { type: 'portal_link', id: link.linkId }, patientId: link.patientId }));
      next();
    },
    { kind: 'patient_link' },
  );
}

export function accessOf(handler: unknown): Access | undefined {
  return typeof handler === 'function' ? (handler as Partial<AccessMarker>)[ACCESS] : undefined;
}
