import type { Request, RequestHandler, Response } from 'express';
import { ALERT_LABELS, PRACTICE_ALERT_KINDS, SEVERITIES } from '../alerts/alerts.js';
import type { Clock } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { acknowledgePracticeAlert, practiceAlerts } from '../services/alerts/alerts.service.js';
import { acknowledgeForm, alertFilterQuery } from '../validation/alerts.schema.js';
import { firstError } from '../validation/text.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface AlertsControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

/** The practice's security alerts (alerts.read): the list with filters, and acknowledging one with a note. */
export function alertsController(d: AlertsControllerDeps) {
  const page = async (req: Request, res: Response, status: number, extra: { error?: string; errorFor?: string; notice?: string; note?: string } = {}) => {
    const actor = actorOf(res);
    const filter = alertFilterQuery.parse(req.query ?? {});
    const alerts = await practiceAlerts(d, actor, { ...(filter.state === 'all' ? {} : { state: filter.state }), ...(filter.kind ? { kind: filter.kind } : {}), ...(filter.severity ? { severity: filter.severity } : {}) }, requestMeta(req, d.clock));
    res.status(status).render('alerts/index', { title: 'Security alerts', slug: actor.slug, actor, alerts, filter, kinds: PRACTICE_ALERT_KINDS, labels: ALERT_LABELS, severities: SEVERITIES, action: (id: string) => `/p/${actor.slug}/alerts/${id}/acknowledge`, csrfToken: res.locals.csrfToken, error: undefined, errorFor: undefined, notice: undefined, note: '', ...extra });
  };
  return {
    /** GET /p/:slug/alerts */
    index: (async (req, res) => page(req, res, 200, req.query.done === 'acknowledged' ? { notice: 'Acknowledged. The note is kept with the alert.' } : {})) satisfies RequestHandler,

    /** POST /p/:slug/alerts/:id/acknowledge */
    acknowledge: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'security_alert');
      const form = acknowledgeForm.safeParse(req.body ?? {});
      const typed = typeof (req.body as { note?: unknown } | undefined)?.note === 'string' ? String((req.body as { note: string }).note).slice(0, 500) : '';
      if (!form.success) return page(req, res, 400, { error: firstError(form.error), errorFor: id, note: typed });
      const result = await acknowledgePracticeAlert(d, actor, id, form.data.note, requestMeta(req, d.clock));
      if (!result.ok) return page(req, res, 409, { error: result.error });
      res.redirect(303, `/p/${actor.slug}/alerts?done=acknowledged`);
    }) satisfies RequestHandler,
  };
}
