import type { RequestHandler } from 'express';
import { pendingMigrations } from '../db/migrations.js';
import type { Db } from '../db/tenant.js';

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
    let pending: string[];
    try {
      pending = await pendingMigrations(db.knex);
    } catch (err) {
      req.log.warn({ err }, 'readiness check: database unavailable');
      res.status(503).json({ status: 'unavailable', reason: 'database' });
      return;
    }
    if (pending.length > 0) {
      res.status(503).json({ status: 'unavailable', reason: 'migrations_pending', pending: pending.length });
      return;
    }
    res.json({ status: 'ready' });
  };
}
