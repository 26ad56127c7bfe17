import type { Request, RequestHandler, Response } from 'express';
import type { Clock } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import { DATE_FORMATS, formatter } from '../presenters/format.js';
import { practiceDetails, practiceLogo, setPracticeLogo, updatePracticeDetails } from '../services/practices/practice-details.service.js';
import { securitySettings, updateSecuritySettings, type SecuritySettingsInput } from '../services/practices/practice-settings.service.js';
import { processLogo, UploadRefused } from '../uploads/pipeline.js';
import { uploadErrorMessage } from '../uploads/multipart.js';
import { fieldErrors, practiceDetailsForm, securitySettingsForm } from '../validation/settings.schema.js';
import { practiceFromParams } from './practice-context.js';
import { actorOf, requestMeta, restoredForm, RESTORED_NOTICE } from './request.js';

export interface SettingsControllerDeps {
  db: Db;
  clock: Clock;
  production: boolean;
}

const SECURITY_FIELDS = ['sessionIdleMinutes', 'sessionAbsoluteHours', 'mfaPolicy', 'portalLinkDays', 'exportVolumeThreshold', 'securityContactUserId', 'auditRetentionYears', 'accessReport', 'baNoticeHours'] as const;

/** The owner's security settings page (behind step-up, GET and POST). */
export function settingsController(d: SettingsControllerDeps) {
  const render = async (res: Response, status: number, extra: { values?: Record<string, unknown>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const page = await securitySettings(d.db, actor, { production: d.production });
    const s: SecuritySettingsInput = page.settings;
    const values = extra.values ?? { sessionIdleMinutes: s.sessionIdleMinutes, sessionAbsoluteHours: s.sessionAbsoluteHours, mfaPolicy: s.mfaRequiredForAll ? 'everyone' : 'administrators', portalLinkDays: s.portalLinkDays, exportVolumeThreshold: s.exportVolumeThreshold, securityContactUserId: s.securityContactUserId ?? '', auditRetentionYears: s.auditRetentionYears, accessReport: s.accessReportNames ? 'names' : 'roles', baNoticeHours: s.baNoticeHours ?? '' };
    res.status(status).render('settings/security', { title: 'Security settings', slug: actor.slug, actor, page, values, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken });
  };
  const echo = (req: Request): Record<string, unknown> => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    return Object.fromEntries(SECURITY_FIELDS.map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 40) : '']));
  };
  const zones = Intl.supportedValuesOf('timeZone');
  // The zones most practices here pick, first in the list (the whole IANA list follows).
  const commonZones = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix', 'America/Los_Angeles', 'America/Anchorage', 'Pacific/Honolulu', 'America/Puerto_Rico', 'America/Toronto', 'Europe/London', 'UTC'].filter((z) => zones.includes(z) || z === 'UTC');
  const example = new Date(Date.UTC(2026, 2, 31));
  const formats = DATE_FORMATS.map((f) => ({ value: f, example: formatter(f).date(example) }));
  const renderDetails = async (res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const current = await practiceDetails(d.db, actor);
    const values = extra.values ?? { phone: current.phone, timeZone: current.timeZone, dateFormat: current.dateFormat };
    res.status(status).render('settings/practice', {
      title: 'Practice details', slug: actor.slug, actor, values, zones: zones.includes(values.timeZone ?? '') ? zones : [current.timeZone, ...zones], commonZones, formats,
      logoUpdatedAt: current.logoUpdatedAt, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken,
    });
  };
  const NOTICES: Record<string, string> = { '0': 'Nothing changed.', '1': 'Saved. Each change is recorded in the audit log.', logo: 'Logo saved: patient pages show it now.', 'logo-removed': 'Logo removed.' };
  return {
    /** GET /p/:slug/settings/practice */
    details: (async (req, res) => renderDetails(res, 200, typeof req.query.saved === 'string' && NOTICES[req.query.saved] ? { notice: NOTICES[req.query.saved] } : {})) satisfies RequestHandler,

    /** POST /p/:slug/settings/practice */
    updateDetails: (async (req, res) => {
      const actor = actorOf(res);
      const form = practiceDetailsForm.safeParse(req.body ?? {});
      if (!form.success) {
        const b = (req.body ?? {}) as Record<string, unknown>;
        const values = Object.fromEntries(['phone', 'timeZone', 'dateFormat'].map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 64) : '']));
        return renderDetails(res, 400, { values, errors: fieldErrors(form.error), error: 'Some values need attention; nothing was saved.' });
      }
      const changed = await updatePracticeDetails(d.db, actor, form.data, requestMeta(req, d.clock));
      res.redirect(303, `/p/${actor.slug}/settings/practice?saved=${changed > 0 ? '1' : '0'}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/settings/practice/logo (multipart) */
    uploadLogo: (async (req, res) => {
      const actor = actorOf(res);
      const refuse = (status: number, message: string) => renderDetails(res, status, { errors: { file: message }, error: 'The logo was not saved.' });
      if (res.locals.uploadError) return refuse(res.locals.uploadError, uploadErrorMessage(res.locals.uploadError));
      if (!req.file) return refuse(400, 'Choose an image file.');
      let png: Buffer;
      try {
        png = await processLogo(req.file.buffer, req.file.originalname);
      } catch (err) {
        if (err instanceof UploadRefused) return refuse(err.status, err.message);
        throw err;
      }
      await setPracticeLogo(d.db, actor, png, requestMeta(req, d.clock));
      res.redirect(303, `/p/${actor.slug}/settings/practice?saved=logo`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/settings/practice/logo/remove */
    removeLogo: (async (req, res) => {
      const actor = actorOf(res);
      await setPracticeLogo(d.db, actor, null, requestMeta(req, d.clock));
      res.redirect(303, `/p/${actor.slug}/settings/practice?saved=logo-removed`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/logo.png — public branding (patient pages, the practice page). */
    logo: (async (req, res, next) => {
      const practice = await practiceFromParams(d.db, req);
      const logo = practice ? await practiceLogo(d.db, practice.id) : undefined;
      if (!logo) return next();
      res.set('Content-Type', 'image/png').set('Cache-Control', 'public, max-age=300').set('X-Content-Type-Options', 'nosniff').send(logo.png);
    }) satisfies RequestHandler,

    /** GET /p/:slug/settings/security */
    show: (async (req, res) => {
      // CASE: the step-up ran out while the owner was editing: what they typed is put back.
      const typed = restoredForm(req, `/p/${actorOf(res).slug}/settings/security`, d.clock);
      if (typed) return render(res, 200, { values: Object.fromEntries(SECURITY_FIELDS.map((k) => [k, typed.text(k, 40)])), notice: RESTORED_NOTICE });
      await render(res, 200, req.query.saved !== undefined ? { notice: req.query.saved === '0' ? 'Nothing changed.' : 'Saved. Each change is recorded in the audit log.' } : {});
    }) satisfies RequestHandler,

    /** POST /p/:slug/settings/security */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const form = securitySettingsForm.safeParse(req.body ?? {});
      if (!form.success) return render(res, 400, { values: echo(req), errors: fieldErrors(form.error), error: 'Some values need attention; nothing was saved.' });
      const { mfaPolicy, accessReport, ...rest } = form.data;
      const result = await updateSecuritySettings(d.db, actor, { ...rest, mfaRequiredForAll: mfaPolicy === 'everyone', accessReportNames: accessReport === 'names' }, requestMeta(req, d.clock), { production: d.production });
      if (!result.ok) return render(res, 400, { values: echo(req), errors: {}, error: result.error });
      res.redirect(303, `/p/${actor.slug}/settings/security?saved=${result.value.changed > 0 ? '1' : '0'}`);
    }) satisfies RequestHandler,
  };
}
