import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** SECURITY: a fresh CSP nonce per response; views put it on any inline script or style. */
export const cspNonce: RequestHandler = (_req, res, next) => {
  res.locals.cspNonce = randomBytes(18).toString('base64');
  next();
};

/**
 * SECURITY: strict CSP (nonce, no unsafe-inline, object-src/base-uri/frame-ancestors 'none'),
 * Referrer-Policy no-referrer, nosniff, frame denial, cross-origin isolation headers.
 * HSTS is added separately and only on HTTPS responses (hsts below).
 */
export function securityHeaders(options: { https: boolean }): RequestHandler {
  const nonce = (_req: unknown, res: unknown): string => `'nonce-${(res as { locals: { cspNonce: string } }).locals.cspNonce}'`;
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", nonce],
        styleSrc: ["'self'", nonce],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        scriptSrcAttr: ["'none'"],
        // NOTE: only over HTTPS; on plain-HTTP localhost it would break the page's own assets.
        upgradeInsecureRequests: options.https ? [] : null,
      },
    },
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
  });
}

/** SECURITY: HSTS for one year (with subdomains) on responses served over HTTPS. */
export const hsts: RequestHandler = (req, res, next) => {
  if (req.secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
  next();
};

/** SECURITY: browser features no page of Enamel uses. */
export const permissionsPolicy: RequestHandler = (_req, res, next) => {
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()');
  next();
};

/** SECURITY: dynamic responses may carry PHI; no browser or proxy may keep them. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/** SECURITY: TRACE/TRACK echo requests (cookies included) back; refuse them outright. */
export const refuseTrace: RequestHandler = (req, res, next) => {
  if (req.method === 'TRACE' || req.method === 'TRACK') {
    res.setHeader('Allow', 'GET, HEAD, POST');
    res.status(405).type('text/plain').send('Method Not Allowed');
    return;
  }
  next();
};
