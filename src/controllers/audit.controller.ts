import type { Request, RequestHandler, Response } from 'express';
import { AUDIT_ACTIONS } from '../audit/event.schema.js';
import type { Clock } from '../auth/staff-auth.js';
import type { Db } from '../db/tenant.js';
import { exportAudit, searchAudit } from '../services/audit/audit-views.service.js';
import type { Meta } from '../services/users/users.service.js';
import { auditFilterForm } from '../validation/audit.schema.js';
import { firstError } from '../validation/users.schema.js';
import { actorOf, requestMeta } from './request.js';

export interface AuditControllerDeps {
  db: Db;
  clock: Clock;
}

const FILTER_KEYS = ['actor', 'patient', 'action', 'outcome', 'from', 'to'] as const;

/** The audit log pages: search (GET) and CSV export (POST, step-up). */
export function auditController(d: AuditControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  /** The raw filter values, echoed into the form (escaped by EJS). */
  const echo = (src: unknown): Record<string, string> => {
    const o = (src ?? {}) as Record<string, unknown>;
    return Object.fromEntries(FILTER_KEYS.map((k) => [k, typeof o[k] === 'string' ? (o[k] as string).slice(0, 64) : '']));
  };
  const render = (res: Response, status: number, view: Record<string, unknown>) =>
    res.status(status).render('audit/index', { title: 'Audit log', slug: actorOf(res).slug, actions: AUDIT_ACTIONS, csrfToken: res.locals.csrfToken, page: undefined, error: undefined, ...view });

  return {
    /** GET /p/:slug/audit */
    index: (async (req, res) => {
      const actor = actorOf(res);
      const form = auditFilterForm.safeParse(req.query);
      if (!form.success) return render(res, 400, { filter: echo(req.query), error: firstError(form.error) });
      const page = await searchAudit(d.db, actor, form.data, meta(req));
      const query = new URLSearchParams(Object.entries(echo(req.query)).filter(([, v]) => v !== ''));
      render(res, 200, { filter: echo(req.query), page, nextUrl: page.nextBefore ? `/p/${actor.slug}/audit?${query.toString() ? `${query.toString()}&` : ''}before=${page.nextBefore}` : undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/audit/export — CSV of the current filter; audited; needs a recent step-up. */
    export: (async (req, res) => {
      const actor = actorOf(res);
      const form = auditFilterForm.safeParse(req.body ?? {});
      if (!form.success) return render(res, 400, { filter: echo(req.body), error: firstError(form.error) });
      const result = await exportAudit(d.db, actor, form.data, meta(req));
      if (!result.ok) return render(res, 400, { filter: echo(req.body), error: result.error });
      const day = new Date(d.clock()).toISOString().slice(0, 10);
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      // SECURITY: the server chooses the file name; nothing from the request goes into it.
      res.setHeader('Content-Disposition', `attachment; filename="audit-${actor.slug}-${day}.csv"`);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.send(result.csv);
    }) satisfies RequestHandler,
  };
}
