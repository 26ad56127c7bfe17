import type { Request, RequestHandler, Response } from 'express';
import { putStash, takeStash } from '../auth/session-stash.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { ARCHIVE_DAYS, checkPatientExport, exportProgress, exportsPage, openExportArchive, startExport } from '../services/exports/exports.service.js';
import type { Clock, Meta } from '../shared/types.js';
import type { FileStore } from '../storage/file-store.js';
import { AccessDenied } from '../policies/index.js';
import { actorOf, idOf, requestMeta, sendDownload } from './request.js';

export interface ExportsControllerDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
  clock: Clock;
}

const passphraseStash = (slug: string, id: string) => `export-passphrase:${slug}:${id}`;

/** The practice export pages: start (step-up), progress (refreshes itself), download (step-up). */
export function exportsController(d: ExportsControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const index = async (res: Response, status: number, error?: string) => {
    const actor = actorOf(res);
    const exports = await exportsPage(d, actor);
    const working = exports.some((e) => e.status === 'queued' || e.status === 'running');
    res.status(status).render('exports/index', { title: 'Export the practice’s records', slug: actor.slug, actor, exports, error, archiveDays: ARCHIVE_DAYS, csrfToken: res.locals.csrfToken, ...(working ? { refreshSeconds: 5 } : {}) });
  };
  const created = (req: Request, res: Response, value: { exportId: string; passphrase: string }) => {
    const actor = actorOf(res);
    // SECURITY: the passphrase waits for the next page sealed in the session, never in a URL; shown once.
    putStash(req, passphraseStash(actor.slug, value.exportId), value.passphrase, d.clock());
    res.redirect(303, `/p/${actor.slug}/exports/${value.exportId}`);
  };

  return {
    /** GET /p/:slug/exports */
    index: (async (_req, res) => index(res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/exports — the whole practice (step-up at the route). */
    create: (async (req, res) => {
      const result = await startExport(d, actorOf(res), {}, meta(req));
      if (!result.ok) return index(res, 409, result.error);
      created(req, res, result.value);
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/export — what exporting one patient's records means, and the button. */
    confirmForPatient: (async (req, res) => {
      const actor = actorOf(res);
      await checkPatientExport(d, actor, idOf(req, 'patient'), meta(req));
      res.render('exports/patient', { title: 'Export this patient’s records', slug: actor.slug, actor, patientId: idOf(req, 'patient'), archiveDays: ARCHIVE_DAYS, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/export — one patient, the same export (step-up at the route). */
    createForPatient: (async (req, res) => {
      const result = await startExport(d, actorOf(res), { patientId: idOf(req, 'patient') }, meta(req));
      if (!result.ok) return index(res, 409, result.error);
      created(req, res, result.value);
    }) satisfies RequestHandler,

    /** GET /p/:slug/exports/:id — progress (refreshes itself while it runs); the passphrase once, right after starting. */
    show: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'export');
      const e = await exportProgress(d, actor, id);
      if (!e) throw new AccessDenied({ resource: { type: 'export', id } });
      const passphrase = takeStash<string>(req, passphraseStash(actor.slug, id), d.clock());
      const working = e.status === 'queued' || e.status === 'running';
      res.render('exports/show', { title: 'Practice export', slug: actor.slug, actor, e, passphrase, archiveDays: ARCHIVE_DAYS, csrfToken: res.locals.csrfToken, ...(working && !passphrase ? { refreshSeconds: 5 } : {}) });
    }) satisfies RequestHandler,

    /** GET /p/:slug/exports/:id/download — the encrypted archive (step-up at the route; audited). */
    download: (async (req, res) => {
      const actor = actorOf(res);
      const opened = await openExportArchive(d, actor, idOf(req, 'export'), meta(req));
      if (!opened) return res.status(410).render('exports/gone', { title: 'Export not available', slug: actor.slug, actor });
      sendDownload(res, { ...opened, contentType: 'application/zip' });
    }) satisfies RequestHandler,
  };
}
