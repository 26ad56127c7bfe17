import type { RequestHandler } from 'express';
import type { Db } from '../db/tenant.js';
import { readiness } from '../services/health/readiness.service.js';

/** GET /healthz — the process is alive and serving. Touches nothing else. */
export const live: RequestHandler = (_req, res) => {
  res.json({ status: 'ok' });
};

/**
 * GET /readyz — ready for traffic: the database answers and every migration this build ships has
 * been applied. 503 otherwise, with a reason code (never connection details).
 */
export function ready(db: Db): RequestHandler {
  return async (req, res) => {
    const r = await readiness(db);
    if (r.ready) return void res.json({ status: 'ready' });
    if (r.reason === 'database') {
      req.log.warn({ err: r.error }, 'readiness check: database unavailable');
      return void res.status(503).json({ status: 'unavailable', reason: 'database' });
    }
    res.status(503).json({ status: 'unavailable', reason: 'migrations_pending', pending: r.pending });
  };
}
