import type { RequestHandler } from 'express';

/**
 * Every route declares who may reach it: the first handler of each route is an access marker.
 * Today only explicitly public routes exist; the permission catalogue (authorization issue) adds
 * `requirePermission(name)` markers. test/http/route-inventory.test.ts walks the router and fails
 * on any route whose first handler is not a marker.
 */
export const ACCESS = Symbol('enamel.access');

export type Access = { kind: 'public'; reason: string } | { kind: 'signed_in' };

export type AccessMarker = RequestHandler & { [ACCESS]: Access };

/** SECURITY: marks a route as reachable without signing in; the reason is read in review. */
export function publicRoute(reason: string): AccessMarker {
  if (reason.trim().length < 10) throw new Error('publicRoute: say why the route is public');
  const marker: RequestHandler = (_req, _res, next) => next();
  return Object.assign(marker, { [ACCESS]: { kind: 'public', reason } as Access });
}

/**
 * SECURITY: the route needs a fully signed-in staff session (password and any required second
 * factor). Until the permission catalogue exists this is the only non-public marker; the
 * controller still checks that the session belongs to the practice in the URL.
 */
export function signedInRoute(): AccessMarker {
  const marker: RequestHandler = (req, res, next) => {
    if (req.session?.staff?.stage === 'signed_in') return next();
    const slug = typeof req.params.slug === 'string' && /^[a-z0-9-]{1,40}$/.test(req.params.slug) ? req.params.slug : undefined;
    res.redirect(303, slug ? `/p/${slug}/sign-in` : '/');
  };
  return Object.assign(marker, { [ACCESS]: { kind: 'signed_in' } as Access });
}

export function accessOf(handler: unknown): Access | undefined {
  return typeof handler === 'function' ? (handler as Partial<AccessMarker>)[ACCESS] : undefined;
}
