import type { Request, RequestHandler, Response } from 'express';
import type { ConfiguredIntegration } from '../compliance/coverage.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import {
  attachInstallationAgreement,
  attachPracticeAgreement,
  openInstallationAgreement,
  openPracticeAgreement,
  installationRegistry,
  installationSubprocessors,
  installationVendor,
  practiceRegistry,
  practiceSubprocessors,
  practiceVendor,
  removePracticeVendor,
  saveInstallationVendor,
  savePracticeVendor,
  type VendorInput,
} from '../services/vendors/vendors.service.js';
import type { Clock } from '../shared/types.js';
import type { FileStore } from '../storage/file-store.js';
import { StorageError } from '../storage/file-store.js';
import { uploadErrorMessage } from '../uploads/multipart.js';
import { processUpload, UploadRefused } from '../uploads/pipeline.js';
import { fieldErrors, resultProblems } from '../validation/text.js';
import { vendorForm } from '../validation/vendors.schema.js';
import { actorOf, idOf, operatorOf, requestMeta, sendDownload } from './request.js';

export interface VendorsControllerDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
  clock: Clock;
  integrations: readonly ConfiguredIntegration[];
}

export const DATA_SEEN_LABELS = { phi: 'PHI (records, images, patient details)', messages_no_phi: 'Messages without PHI (a practice name and a link)', none: 'No patient data' } as const;
export const AGREEMENT_LABELS = { none: 'None', requested: 'Requested', executed: 'Executed', expired: 'Expired', not_required: 'Not needed: our own system or staff' } as const;
export const STATE_LABELS = { covered: 'Covered', own_system: 'Our own system (no business associate)', missing: 'Missing agreement', expired: 'Agreement expired', no_phi: 'No PHI by design' } as const;
export const INTEGRATION_LABELS = { hosting: 'Hosting (the server)', database: 'Database service', file_store: 'File store', backup_target: 'Backup target', email: 'Email (SMTP)', sms: 'Text messages (SMS API)', key_provider: 'Key service' } as const;

const FIELDS = ['name', 'service', 'integration', 'dataSeen', 'agreement', 'signedOn', 'expiresOn', 'reviewOn', 'notes', 'listed'] as const;
const echo = (req: Request): Record<string, string> => {
  const b = (req.body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(FIELDS.map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 4000) : '']));
};
const valuesOf = (v: { name: string; service: string; integration: string | null; dataSeen: string; recorded: string; signedOn: string | null; expiresOn: string | null; reviewOn: string | null; notes: string; listed: boolean }): Record<string, string> => ({
  name: v.name, service: v.service, integration: v.integration ?? '', dataSeen: v.dataSeen, agreement: v.recorded, signedOn: v.signedOn ?? '', expiresOn: v.expiresOn ?? '', reviewOn: v.reviewOn ?? '', notes: v.notes, listed: v.listed ? 'yes' : '',
});
const EMPTY = { name: '', service: '', integration: '', dataSeen: 'phi', agreement: 'none', signedOn: '', expiresOn: '', reviewOn: '', notes: '', listed: 'yes' };
const labels = { dataSeen: DATA_SEEN_LABELS, agreements: AGREEMENT_LABELS, states: STATE_LABELS, integrations: INTEGRATION_LABELS };

/** The BAA registry: the practice's (compliance.manage), the installation's (operators), and the sub-processor lists. */
export function vendorsController(d: VendorsControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const now = () => new Date(d.clock());
  const practicePage = async (res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    res.status(status).render('vendors/index', { title: 'Business associates', slug: actor.slug, actor, page: await practiceRegistry(d, actor, d.integrations, now()), values: extra.values ?? EMPTY, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken, ...labels });
  };
  const editPage = async (req: Request, res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const id = idOf(req, 'vendor');
    const v = await practiceVendor(d, actor, id, now());
    res.status(status).render('vendors/edit', { title: `Edit ${v.name}`, slug: actor.slug, actor, vendor: v, action: `/p/${actor.slug}/vendors/${id}`, values: extra.values ?? valuesOf(v), errors: extra.errors ?? {}, error: extra.error, notice: extra.notice ?? (req.query.saved === 'document' ? 'The signed agreement is stored (encrypted).' : undefined), csrfToken: res.locals.csrfToken, installation: false, ...labels });
  };
  const operatorPage = async (res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    res.status(status).render('operator/vendors', { title: 'Business associates', operator: operatorOf(res), page: await installationRegistry(d, operatorOf(res), d.integrations, now()), values: extra.values ?? EMPTY, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken, ...labels });
  };
  const operatorEditPage = async (req: Request, res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string } = {}) => {
    const id = idOf(req, 'vendor');
    const v = await installationVendor(d, operatorOf(res), id, now());
    res.status(status).render('vendors/edit', { title: `Edit ${v.name}`, operator: operatorOf(res), vendor: v, action: `/operator/vendors/${id}`, values: extra.values ?? valuesOf(v), errors: extra.errors ?? {}, error: extra.error, notice: req.query.saved === 'document' ? 'The signed agreement is stored (encrypted).' : undefined, csrfToken: res.locals.csrfToken, installation: true, ...labels });
  };
  const parse = (req: Request): { ok: true; input: VendorInput } | { ok: false; errors: Record<string, string> } => {
    const form = vendorForm.safeParse(req.body ?? {});
    if (!form.success) return { ok: false, errors: fieldErrors(form.error) };
    return { ok: true, input: { ...form.data, integration: form.data.integration ?? null } };
  };
  const saved = (req: Request) => (req.query.saved === '1' ? { notice: 'Saved. The change is dated on the sub-processor list.' } : req.query.saved === 'removed' ? { notice: 'Removed from the registry (its history stays).' } : {});

  /** The signed copy of an agreement, from a multipart form (parsed under limits before the CSRF check): a PDF or an image. */
  const upload = async (req: Request, res: Response, again: (status: number, error: string) => Promise<void>, store: (file: Awaited<ReturnType<typeof processUpload>>) => Promise<void>): Promise<boolean> => {
    if (res.locals.uploadError) {
      await again(res.locals.uploadError, uploadErrorMessage(res.locals.uploadError));
      return false;
    }
    if (!req.file) {
      await again(400, 'Choose the signed agreement (a PDF or a photo of it).');
      return false;
    }
    try {
      await store(await processUpload(req.file.buffer, req.file.originalname));
      return true;
    } catch (err) {
      if (err instanceof UploadRefused) {
        await again(err.status, err.message);
        return false;
      }
      if (err instanceof StorageError) {
        req.log.error({ code: err.code }, 'file store could not write; upload refused');
        await again(503, 'The file could not be stored; nothing was saved. Try again later, or tell whoever runs your Enamel server.');
        return false;
      }
      throw err;
    }
  };
  return {
    /** POST /p/:slug/vendors/:id/document (multipart) */
    attach: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'vendor');
      const done = await upload(req, res, (status, error) => editPage(req, res, status, { errors: { file: error }, error: 'The signed agreement was not saved.' }), (file) => attachPracticeAgreement(d, actor, id, file, meta(req)));
      if (done) res.redirect(303, `/p/${actor.slug}/vendors/${id}?saved=document`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/vendors/:id/document — the signed copy (audited). */
    document: (async (req, res) => sendDownload(res, await openPracticeAgreement(d, actorOf(res), idOf(req, 'vendor'), meta(req)))) satisfies RequestHandler,

    /** POST /operator/vendors/:id/document (multipart) */
    operatorAttach: (async (req, res) => {
      const id = idOf(req, 'vendor');
      const done = await upload(req, res, (status, error) => operatorEditPage(req, res, status, { errors: { file: error }, error: 'The signed agreement was not saved.' }), (file) => attachInstallationAgreement(d, operatorOf(res), id, file, meta(req)));
      if (done) res.redirect(303, `/operator/vendors/${id}?saved=document`);
    }) satisfies RequestHandler,

    /** GET /operator/vendors/:id/document */
    operatorDocument: (async (req, res) => sendDownload(res, await openInstallationAgreement(d, operatorOf(res), idOf(req, 'vendor'), meta(req)))) satisfies RequestHandler,

    /** GET /p/:slug/vendors */
    index: (async (req, res) => practicePage(res, 200, saved(req))) satisfies RequestHandler,

    /** POST /p/:slug/vendors */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const p = parse(req);
      if (!p.ok) return practicePage(res, 400, { values: echo(req), errors: p.errors, error: 'Some values need attention; nothing was saved.' });
      const r = await savePracticeVendor(d, actor, null, p.input, meta(req));
      if (!r.ok) return practicePage(res, 400, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, `/p/${actor.slug}/vendors?saved=1`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/vendors/:id */
    edit: (async (req, res) => editPage(req, res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/vendors/:id */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'vendor');
      const p = parse(req);
      if (!p.ok) return editPage(req, res, 400, { values: echo(req), errors: p.errors, error: 'Some values need attention; nothing was saved.' });
      const r = await savePracticeVendor(d, actor, id, p.input, meta(req));
      if (!r.ok) return editPage(req, res, 400, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, `/p/${actor.slug}/vendors?saved=1`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/vendors/:id/remove */
    remove: (async (req, res) => {
      const actor = actorOf(res);
      await removePracticeVendor(d, actor, idOf(req, 'vendor'), meta(req));
      res.redirect(303, `/p/${actor.slug}/vendors?saved=removed`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/subprocessors — every staff member: who the practice's data goes to. */
    practiceList: (async (_req, res) => {
      const actor = actorOf(res);
      res.render('vendors/subprocessors', { title: 'Sub-processors', slug: actor.slug, actor, list: await practiceSubprocessors(d.db, actor), dataSeen: DATA_SEEN_LABELS, publicPage: false });
    }) satisfies RequestHandler,

    /** GET <SUBPROCESSORS_PATH> — the installation's sub-processors, public when configured. */
    publicList: (async (_req, res) => {
      res.render('vendors/subprocessors', { title: 'Sub-processors', list: { ...(await installationSubprocessors(d.db)), practice: [] }, dataSeen: DATA_SEEN_LABELS, publicPage: true });
    }) satisfies RequestHandler,

    /** GET /operator/vendors (?for=<integration>: the add form for that integration) */
    operatorIndex: (async (req, res) => {
      const chosen = typeof req.query.for === 'string' && Object.hasOwn(INTEGRATION_LABELS, req.query.for) ? req.query.for : '';
      return operatorPage(res, 200, { ...saved(req), ...(chosen ? { values: { ...EMPTY, integration: chosen, service: INTEGRATION_LABELS[chosen as keyof typeof INTEGRATION_LABELS] } } : {}) });
    }) satisfies RequestHandler,

    /** POST /operator/vendors */
    operatorCreate: (async (req, res) => {
      const p = parse(req);
      if (!p.ok) return operatorPage(res, 400, { values: echo(req), errors: p.errors, error: 'Some values need attention; nothing was saved.' });
      const r = await saveInstallationVendor(d, operatorOf(res), null, p.input, meta(req));
      if (!r.ok) return operatorPage(res, 400, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, '/operator/vendors?saved=1');
    }) satisfies RequestHandler,

    /** GET /operator/vendors/:id */
    operatorEdit: (async (req, res) => operatorEditPage(req, res, 200)) satisfies RequestHandler,

    /** POST /operator/vendors/:id */
    operatorUpdate: (async (req, res) => {
      const p = parse(req);
      if (!p.ok) return operatorEditPage(req, res, 400, { values: echo(req), errors: p.errors, error: 'Some values need attention; nothing was saved.' });
      const r = await saveInstallationVendor(d, operatorOf(res), idOf(req, 'vendor'), p.input, meta(req));
      if (!r.ok) return operatorEditPage(req, res, 400, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, '/operator/vendors?saved=1');
    }) satisfies RequestHandler,
  };
}
