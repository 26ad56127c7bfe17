import type { Request, RequestHandler, Response } from 'express';
import type { Clock } from '../auth/staff-auth.js';
import type { Db } from '../db/tenant.js';
import { securitySettings, updateSecuritySettings, type SecuritySettingsInput } from '../services/practices/practice-settings.service.js';
import { fieldErrors, securitySettingsForm } from '../validation/settings.schema.js';
import { actorOf, requestMeta } from './request.js';

export interface SettingsControllerDeps {
  db: Db;
  clock: Clock;
  production: boolean;
}

/** The owner's security settings page (behind step-up, GET and POST). */
export function settingsController(d: SettingsControllerDeps) {
  const render = async (res: Response, status: number, extra: { values?: Record<string, unknown>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const page = await securitySettings(d.db, actor, { production: d.production });
    const s: SecuritySettingsInput = page.settings;
    const values = extra.values ?? { sessionIdleMinutes: s.sessionIdleMinutes, sessionAbsoluteHours: s.sessionAbsoluteHours, mfaPolicy: s.mfaRequiredForAll ? 'everyone' : 'administrators', portalLinkDays: s.portalLinkDays, exportVolumeThreshold: s.exportVolumeThreshold, securityContactUserId: s.securityContactUserId ?? '', auditRetentionYears: s.auditRetentionYears };
    res.status(status).render('settings/security', { title: 'Security settings', slug: actor.slug, actor, page, values, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken });
  };
  const echo = (req: Request): Record<string, unknown> => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    return Object.fromEntries(['sessionIdleMinutes', 'sessionAbsoluteHours', 'mfaPolicy', 'portalLinkDays', 'exportVolumeThreshold', 'securityContactUserId', 'auditRetentionYears'].map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 40) : '']));
  };
  return {
    /** GET /p/:slug/settings/security */
    show: (async (req, res) => render(res, 200, req.query.saved !== undefined ? { notice: req.query.saved === '0' ? 'Nothing changed.' : 'Saved. Each change is recorded in the audit log.' } : {})) satisfies RequestHandler,

    /** POST /p/:slug/settings/security */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const form = securitySettingsForm.safeParse(req.body ?? {});
      if (!form.success) return render(res, 400, { values: echo(req), errors: fieldErrors(form.error), error: 'Some values need attention; nothing was saved.' });
      const { mfaPolicy, ...rest } = form.data;
      const result = await updateSecuritySettings(d.db, actor, { ...rest, mfaRequiredForAll: mfaPolicy === 'everyone' }, requestMeta(req, d.clock), { production: d.production });
      if (!result.ok) return render(res, 400, { values: echo(req), errors: {}, error: result.error });
      res.redirect(303, `/p/${actor.slug}/settings/security?saved=${result.value.changed > 0 ? '1' : '0'}`);
    }) satisfies RequestHandler,
  };
}
