import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { escapeControl, type Logger } from '../config/logger.js';

const INCOMING_ID = /^[A-Za-z0-9._:-]{8,64}$/;
const QUIET_PATHS = new Set(['/healthz', '/readyz']);
/** Path segments that are credentials (invitation and password-reset tokens, signed file URLs, patient link codes): never written to the log. */
const SECRET_SEGMENTS = /\/(invitations|password-reset|files|l)\/[^/]+/g;

/**
 * Gives each request an id and a logger bound to it, and writes one access line when the response
 * finishes. SECURITY: the line holds method, path (never the query string), status, timing and
 * ids — never bodies, cookies or headers that could carry PHI or secrets.
 */
export function requestContext(logger: Logger, options: { trustIncomingId: boolean }): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    // NOTE: an incoming id is only honoured behind a trusted proxy, and only in a safe shape.
    req.id = options.trustIncomingId && incoming && INCOMING_ID.test(incoming) ? incoming : randomUUID();
    req.log = logger.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = {
        method: escapeControl(req.method, 16),
        path: escapeControl(req.path.replace(SECRET_SEGMENTS, '/$1/:token'), 256),
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        ip: req.ip,
      };
      if (QUIET_PATHS.has(req.path) && res.statusCode < 400) req.log.debug(line, 'request');
      else req.log.info(line, 'request');
    });
    next();
  };
}
