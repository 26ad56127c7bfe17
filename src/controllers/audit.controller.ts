import type { Request, RequestHandler, Response } from 'express';
import { AUDIT_ACTIONS } from '../audit/event.schema.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import type { Keyring } from '../crypto/keyring.js';
import { exportAudit, searchAudit } from '../services/audit/audit-views.service.js';
import { auditFilterForm } from '../validation/audit.schema.js';
import { patientSearchForm } from '../validation/patient.schema.js';
import { searchPatients } from '../services/patients/patients.service.js';
import { ACTION_LABELS } from '../presenters/audit.presenter.js';
import { formStash, takeStash } from '../auth/session-stash.js';
import { firstError } from '../validation/text.js';
import { actorOf, requestMeta } from './request.js';

export interface AuditControllerDeps {
  db: Db;
  keyring: Keyring;
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
    res.status(status).render('audit/index', {
      title: 'Audit log', slug: actorOf(res).slug, actor: actorOf(res), actions: AUDIT_ACTIONS.map((a) => ({ value: a, label: ACTION_LABELS[a] })).sort((a, b) => a.label.localeCompare(b.label)),
      csrfToken: res.locals.csrfToken, page: undefined, error: undefined, restored: false, picks: undefined, patientQ: '', pickError: undefined, ...view,
    });

  /** The search page for `source` (the query, or an export's fields brought back after a step-up). */
  const searchPage = async (req: Request, res: Response, source: unknown, extra: Record<string, unknown> = {}, status = 200) => {
    const actor = actorOf(res);
    const form = auditFilterForm.safeParse(source);
    if (!form.success) return render(res, 400, { filter: echo(source), error: firstError(form.error), ...extra });
    const page = await searchAudit(d, actor, form.data, meta(req));
    const query = new URLSearchParams(Object.entries(echo(source)).filter(([, v]) => v !== ''));
    render(res, status, { filter: echo(source), page, nextUrl: page.nextBefore ? `/p/${actor.slug}/audit?${query.toString() ? `${query.toString()}&` : ''}before=${page.nextBefore}` : undefined, ...extra });
  };

  return {
    /** GET /p/:slug/audit */
    index: (async (req, res) => {
      const actor = actorOf(res);
      // CASE: back from the step-up an export asked for: the export's filters, not an empty search.
      const stashed = takeStash<Record<string, unknown>>(req, formStash(`/p/${actor.slug}/audit/export`), d.clock());
      if (stashed) return searchPage(req, res, stashed, { restored: true });
      await searchPage(req, res, req.query);
    }) satisfies RequestHandler,

    /**
     * POST /p/:slug/audit/patients — find the patient to filter by, by name, date of birth or phone
     * (POST: nothing identifying in a URL). The search is the patients page's, audited the same way.
     */
    findPatient: (async (req, res) => {
      const actor = actorOf(res);
      const form = patientSearchForm.safeParse(req.body ?? {});
      const q = typeof (req.body as Record<string, unknown> | undefined)?.q === 'string' ? String((req.body as Record<string, unknown>).q).slice(0, 254) : '';
      if (!form.success) return searchPage(req, res, {}, { patientQ: q, pickError: firstError(form.error) }, 400);
      const found = await searchPatients(d, actor, form.data.q, meta(req), res.locals.fmt.format);
      await searchPage(req, res, {}, { patientQ: q, picks: found.patients });
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
