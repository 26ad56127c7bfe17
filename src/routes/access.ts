import type { RequestHandler } from 'express';

/**
 * Every route declares who may reach it: the first handler of each route is an access marker.
 * Today only explicitly public routes exist; the permission catalogue (authorization issue) adds
 * `requirePermission(name)` markers. test/http/route-inventory.test.ts walks the router and fails
 * on any route whose first handler is not a marker.
 */
export const ACCESS = Symbol('enamel.access');

export type Access = { kind: 'public'; reason: string };

export type AccessMarker = RequestHandler & { [ACCESS]: Access };

/** SECURITY: marks a route as reachable without signing in; the reason is read in review. */
export function publicRoute(reason: string): AccessMarker {
  if (reason.trim().length < 10) throw new Error('publicRoute: say why the route is public');
  const marker: RequestHandler = (_req, _res, next) => next();
  return Object.assign(marker, { [ACCESS]: { kind: 'public', reason } as Access });
}

export function accessOf(handler: unknown): Access | undefined {
  return typeof handler === 'function' ? (handler as Partial<AccessMarker>)[ACCESS] : undefined;
}
