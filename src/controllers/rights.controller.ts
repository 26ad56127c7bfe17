import type { Request, RequestHandler, Response } from 'express';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { csvDocument } from '../presenters/csv.js';
import {
  accountingOfDisclosures,
  closeRequest,
  DISCLOSURE_PURPOSES,
  DUE_DAYS,
  EXCLUDED_PURPOSES,
  extendRequest,
  patientRights,
  recordRestriction,
  endPatientRestriction,
  requestAmendment,
  decideAmendment,
  addDisagreement,
  amendmentPatientId,
  recordDisclosure,
  recordRequest,
  requestPatientId,
  requestsRegister,
} from '../services/rights/rights.service.js';
import type { Clock, Meta } from '../shared/types.js';
import { accountingQuery, amendmentDecisionForm, amendmentRequestForm, closeForm, disagreementForm, disclosureForm, extendForm, requestForm, restrictionForm } from '../validation/rights.schema.js';
import { formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface RightsControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

/** A request's extend or answer form sits in a list: its problems are shown above the page, in words. */
const inWords = (p: FormProblems): FormProblems => ({ errors: {}, error: Object.values(p.errors).join(' ') || p.error });

export const KIND_LABELS: Record<string, string> = {
  access: 'Access to their records',
  amendment: 'Amendment of their record',
  accounting: 'Accounting of disclosures',
  restriction: 'Restriction on use or disclosure',
  confidential_communication: 'Confidential communications',
};
export const CHANNEL_LABELS: Record<string, string> = {
  email_only: 'Contact by email only',
  text_only: 'Contact by text message only',
  no_email: 'No email',
  no_text: 'No text messages',
};

export const PURPOSE_LABELS: Record<string, string> = {
  treatment: 'Treatment (e.g. to a specialist)',
  payment: 'Payment (e.g. to an insurer)',
  operations: 'Health care operations',
  to_patient: 'To the patient',
  authorized: 'With the patient’s written authorization',
  public_health: 'Public health',
  court_order: 'Court order or subpoena',
  law_enforcement: 'Law enforcement',
  health_oversight: 'Health oversight',
  research: 'Research',
  records_export: 'Records exported',
  other: 'Other',
};

/** The patient-rights pages: the register, a patient's requests and disclosures, the accounting. */
export function rightsController(d: RightsControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const patientPage = (req: Request, res: Response, status: number, problems: Partial<FormProblems> & { form?: string; typed?: Record<string, unknown> } = {}) => patientPageFor(req, res, idOf(req, 'patient'), status, problems);
  const patientPageFor = async (req: Request, res: Response, id: string, status: number, problems: Partial<FormProblems> & { form?: string; typed?: Record<string, unknown> } = {}) => {
    const actor = actorOf(res);
    const { requests, restrictions, amendments, targets } = await patientRights(d, actor, id, meta(req));
    res.status(status).render('rights/patient', {
      title: 'Rights & disclosures', slug: actor.slug, actor, patientId: id, requests, restrictions, amendments, targets, channels: CHANNEL_LABELS, kinds: KIND_LABELS, dueDays: DUE_DAYS, purposes: DISCLOSURE_PURPOSES.map((p) => ({ value: p, label: PURPOSE_LABELS[p], excludable: EXCLUDED_PURPOSES.includes(p) })),
      csrfToken: res.locals.csrfToken, errors: problems.errors ?? {}, error: problems.error, form: problems.form, typed: problems.typed ?? {}, today: new Date(d.clock()).toISOString().slice(0, 10),
    });
  };

  return {
    /** GET /p/:slug/requests — every open request by due date, then the latest answered. */
    register: (async (req, res) => {
      const actor = actorOf(res);
      const { open, closed } = await requestsRegister(d, actor, meta(req));
      res.render('rights/register', { title: 'Patients’ requests', slug: actor.slug, actor, open, closed, kinds: KIND_LABELS, csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/rights */
    patient: (async (req, res) => patientPage(req, res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/requests */
    createRequest: (async (req, res) => {
      const parsed = requestForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPage(req, res, 400, { ...formProblems(parsed.error), form: 'request', typed: req.body as Record<string, unknown> });
      const result = await recordRequest(d, actorOf(res), idOf(req, 'patient'), parsed.data, meta(req));
      if (!result.ok) return patientPage(req, res, 400, { ...resultProblems(result), form: 'request', typed: req.body as Record<string, unknown> });
      res.redirect(303, `/p/${actorOf(res).slug}/patients/${idOf(req, 'patient')}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patient-requests/:id/extend — a problem is shown on the patient's page, beside nothing else changed. */
    extend: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient_request');
      const patientId = await requestPatientId(d, actor, id, meta(req));
      const parsed = extendForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPageFor(req, res, patientId, 400, inWords(formProblems(parsed.error)));
      const result = await extendRequest(d, actor, id, parsed.data, meta(req));
      if (!result.ok) return patientPageFor(req, res, patientId, 400, inWords(resultProblems(result)));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patient-requests/:id/close */
    close: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient_request');
      const patientId = await requestPatientId(d, actor, id, meta(req));
      const parsed = closeForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPageFor(req, res, patientId, 400, inWords(formProblems(parsed.error)));
      const result = await closeRequest(d, actor, id, { status: parsed.data.status, note: parsed.data.note, feeCents: parsed.data.fee }, meta(req));
      if (!result.ok) return patientPageFor(req, res, patientId, 400, inWords(resultProblems(result)));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/restrictions/:id/end — the restriction or contact rule no longer holds. */
    endRestriction: (async (req, res) => {
      const actor = actorOf(res);
      const result = await endPatientRestriction(d, actor, idOf(req, 'patient_request'), meta(req));
      if (result.error) return patientPageFor(req, res, result.patientId, 409, { error: result.error, errors: {} });
      res.redirect(303, `/p/${actor.slug}/patients/${result.patientId}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/restrictions — the practice's answer to a restriction or communication request. */
    createRestriction: (async (req, res) => {
      const parsed = restrictionForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPage(req, res, 400, { ...formProblems(parsed.error), form: 'restriction', typed: req.body as Record<string, unknown> });
      const result = await recordRestriction(d, actorOf(res), idOf(req, 'patient'), { ...parsed.data, channel: parsed.data.channel ?? null }, meta(req));
      if (!result.ok) return patientPage(req, res, 400, { ...resultProblems(result), form: 'restriction', typed: req.body as Record<string, unknown> });
      res.redirect(303, `/p/${actorOf(res).slug}/patients/${idOf(req, 'patient')}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/amendments — the patient asks to amend part of their record. */
    createAmendment: (async (req, res) => {
      const parsed = amendmentRequestForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPage(req, res, 400, { ...formProblems(parsed.error), form: 'amendment', typed: req.body as Record<string, unknown> });
      const [targetType, targetId] = parsed.data.target.split(':') as ['demographics' | 'clinical_note' | 'treatment_plan', string];
      const result = await requestAmendment(d, actorOf(res), idOf(req, 'patient'), { targetType, targetId, change: parsed.data.change, receivedVia: parsed.data.receivedVia, receivedAt: parsed.data.receivedAt }, meta(req));
      if (!result.ok) return patientPage(req, res, 400, { ...resultProblems(result), form: 'amendment', typed: req.body as Record<string, unknown> });
      res.redirect(303, `/p/${actorOf(res).slug}/patients/${idOf(req, 'patient')}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/record-amendments/:id/decide */
    decideAmendment: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient_request');
      const patientId = await amendmentPatientId(d, actor, id, meta(req));
      const parsed = amendmentDecisionForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPageFor(req, res, patientId, 400, inWords(formProblems(parsed.error)));
      const result = await decideAmendment(d, actor, id, parsed.data, meta(req));
      if (!result.ok) return patientPageFor(req, res, patientId, 400, inWords(resultProblems(result)));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/record-amendments/:id/disagreement */
    disagreement: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient_request');
      const patientId = await amendmentPatientId(d, actor, id, meta(req));
      const parsed = disagreementForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPageFor(req, res, patientId, 400, inWords(formProblems(parsed.error)));
      const result = await addDisagreement(d, actor, id, parsed.data.statement, meta(req));
      if (!result.ok) return patientPageFor(req, res, patientId, 400, inWords(resultProblems(result)));
      res.redirect(303, `/p/${actor.slug}/patients/${patientId}/rights`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/disclosures */
    createDisclosure: (async (req, res) => {
      const parsed = disclosureForm.safeParse(req.body ?? {});
      if (!parsed.success) return patientPage(req, res, 400, { ...formProblems(parsed.error), form: 'disclosure', typed: req.body as Record<string, unknown> });
      const result = await recordDisclosure(d, actorOf(res), idOf(req, 'patient'), parsed.data, meta(req));
      if (!result.ok) return patientPage(req, res, 400, { ...resultProblems(result), form: 'disclosure', typed: req.body as Record<string, unknown> });
      res.redirect(303, `/p/${actorOf(res).slug}/patients/${idOf(req, 'patient')}/accounting`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/accounting[?from=&to=&all=1&format=csv] — printable, downloadable. */
    accounting: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'patient');
      const q = accountingQuery.parse(req.query ?? {});
      const day = (v: string | undefined, end = false) => (v && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) ? new Date(Date.parse(`${v}T00:00:00Z`) + (end ? 86_400_000 : 0)) : undefined);
      const from = day(q.from);
      const to = day(q.to, true);
      const a = await accountingOfDisclosures(d, actor, id, { includeExcluded: q.all === '1', ...(from ? { from } : {}), ...(to ? { to } : {}) }, meta(req));
      if (q.format === 'csv') {
        res.setHeader('Content-Type', 'text/csv; charset=utf-8');
        // SECURITY: the server chooses the file name (no name of the patient in it).
        res.setHeader('Content-Disposition', `attachment; filename="accounting-of-disclosures-${id.slice(0, 8)}.csv"`);
        return res.send(csvDocument(['date', 'recipient', 'recipient_address', 'purpose', 'what_was_disclosed', 'recorded_by'], a.rows.map((r) => [r.disclosedAt.toISOString().slice(0, 10), r.recipientName, r.recipientAddress, PURPOSE_LABELS[r.purpose], r.description, r.recordedBy])));
      }
      res.render('rights/accounting', { title: 'Accounting of disclosures', slug: actor.slug, actor, patientId: id, a, purposes: PURPOSE_LABELS, query: { from: q.from ?? '', to: q.to ?? '', all: q.all === '1' } });
    }) satisfies RequestHandler,
  };
}
