import type { Request, RequestHandler, Response } from 'express';
import { chartAppointments } from '../services/schedule/schedule.service.js';
import { STATUS_LABELS } from './schedule.controller.js';
import type { ZodError } from 'zod';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import {
  breakGlass,
  breakGlassAllowed,
  breakGlassReview,
  changePatient,
  createPatient,
  markReviewed,
  patientAccessHistory,
  patientForEdit,
  patientLocations,
  recentPatients,
  searchPatients,
  showPatient,
  BREAK_GLASS_MINUTES,
} from '../services/patients/patients.service.js';
import { BREAK_GLASS_REASONS, CONTACT_METHODS, EDITABLE_STATUSES, SEXES, breakGlassForm, patientFormFor, patientSearchForm, SMS_CONSENT_CHOICES } from '../validation/patient.schema.js';
import { firstError } from '../validation/text.js';
import { errorSummary, fieldErrors } from '../validation/text.js';
import { actorOf, idOf, requestMeta, restoredForm } from './request.js';

export interface PatientsControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

const EMPTY_FORM = {
  givenName: '', familyName: '', dateOfBirth: '', sex: '', phone: '', email: '', preferredContact: 'phone', addressLine1: '', addressLine2: '', city: '', region: '',
  postalCode: '', insuranceCarrier: '', insuranceMemberId: '', emergencyName: '', emergencyPhone: '', emergencyRelationship: '', locationId: '', status: 'active', smsConsent: 'none',
};

/** The submitted values, echoed back into the form after an error (strings only, escaped by EJS). */
function echo(body: unknown): typeof EMPTY_FORM {
  const b = (body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(EMPTY_FORM).map(([k, v]) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 300) : v])) as typeof EMPTY_FORM;
}

const patientId = (req: Request): string => idOf(req, 'patient');

/** Every field's error beside it, and the count above the form. */
function formErrors(error: ZodError): { errors: Record<string, string>; error: string } {
  const errors = fieldErrors(error);
  return { errors, error: errorSummary(errors) };
}

/** Patients: search, recent, register, chart, edit, access history, break-glass and its review. */
export function patientsController(d: PatientsControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const choices = { sexes: SEXES, contactMethods: CONTACT_METHODS, statuses: EDITABLE_STATUSES, smsConsents: SMS_CONSENT_CHOICES };

  const renderIndex = async (req: Request, res: Response, status: number, extra: Record<string, unknown>) => {
    const actor = actorOf(res);
    const recent = await recentPatients(d, actor, meta(req));
    res.status(status).render('patients/index', { title: 'Patients', slug: actor.slug, actor, recent, results: undefined, q: '', error: undefined, csrfToken: res.locals.csrfToken, ...extra });
  };
  const renderForm = async (res: Response, status: number, view: { id?: string; form: typeof EMPTY_FORM; error?: string; errors?: Record<string, string>; duplicates?: unknown[] }) => {
    const actor = actorOf(res);
    const locations = await patientLocations(d, actor);
    res.status(status).render('patients/form', { title: view.id ? 'Edit patient' : 'New patient', slug: actor.slug, actor, locations, ...choices, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, duplicates: undefined, id: undefined, ...view });
  };

  return {
    /** GET /p/:slug/patients — search box and the user's recent patients. */
    index: (async (req, res) => renderIndex(req, res, 200, {})) satisfies RequestHandler,

    /** POST /p/:slug/patients/search — POST so that names, dates and phones never sit in a URL. */
    search: (async (req, res) => {
      const actor = actorOf(res);
      const form = patientSearchForm.safeParse(req.body ?? {});
      const q = typeof (req.body as { q?: unknown } | undefined)?.q === 'string' ? String((req.body as { q: string }).q).slice(0, 254) : '';
      if (!form.success) return renderIndex(req, res, 400, { q, error: firstError(form.error) });
      const results = await searchPatients(d, actor, form.data.q, meta(req), res.locals.fmt.format);
      await renderIndex(req, res, 200, { q, results });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/new */
    new: (async (_req, res) => {
      const locations = await patientLocations(d, actorOf(res));
      await renderForm(res, 200, { form: { ...EMPTY_FORM, locationId: locations.length === 1 ? locations[0]!.id : '' } });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const parsed = patientFormFor(res.locals.fmt.format).safeParse(req.body ?? {});
      if (!parsed.success) return renderForm(res, 400, { form: echo(req.body), ...formErrors(parsed.error) });
      const result = await createPatient(d, actor, parsed.data, meta(req));
      if (result.ok) return res.redirect(303, `/p/${actor.slug}/patients/${result.id}`);
      if ('duplicates' in result) return renderForm(res, 409, { form: echo(req.body), duplicates: result.duplicates, error: 'A patient with the same last name and date of birth already exists. Open them below, or confirm that this is a different person.' });
      await renderForm(res, result.refused ? 403 : 400, { form: echo(req.body), error: result.error });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id — the chart summary. */
    show: (async (req, res) => {
      const actor = actorOf(res);
      const patient = await showPatient(d, actor, patientId(req), meta(req));
      const appointments = await chartAppointments(d, actor, patient.id, meta(req));
      res.render('patients/show', { title: patient.name, slug: actor.slug, actor, patient, appointments, appointmentStatuses: STATUS_LABELS, saved: req.query.saved === '1' });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/edit */
    edit: (async (req, res) => {
      const id = patientId(req);
      const form = await patientForEdit(d, actorOf(res), id, meta(req));
      await renderForm(res, 200, { id, form });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const id = patientId(req);
      const parsed = patientFormFor(res.locals.fmt.format).safeParse(req.body ?? {});
      if (!parsed.success) {
        await patientForEdit(d, actor, id, meta(req)); // SECURITY: same access check before echoing the form
        return renderForm(res, 400, { id, form: echo(req.body), ...formErrors(parsed.error) });
      }
      const result = await changePatient(d, actor, id, parsed.data, meta(req));
      if (!result.ok) return renderForm(res, result.refused ? 403 : 400, { id, form: echo(req.body), error: result.error });
      res.redirect(303, `/p/${actor.slug}/patients/${id}?saved=1`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/access — who accessed this record. */
    access: (async (req, res) => {
      const actor = actorOf(res);
      const history = await patientAccessHistory(d, actor, patientId(req), meta(req));
      res.render('patients/access', { title: `Access history: ${history.patient.name}`, slug: actor.slug, actor, history });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/break-glass */
    showBreakGlass: (async (req, res) => {
      const actor = actorOf(res);
      const id = patientId(req);
      if (!(await breakGlassAllowed(d, actor, id, meta(req)))) throw new AccessDenied({ resource: { type: 'patient', id }, patientId: id, permission: 'breakglass.use' });
      // CASE: back from the step-up this form asked for: what was typed is put back (sealed in the session meanwhile).
      const typed = restoredForm(req, `/p/${actor.slug}/patients/${id}/break-glass`, d.clock);
      const form = { reasonCode: typed?.text('reasonCode', 40) ?? '', justification: typed?.text('justification', 1000) ?? '' };
      res.render('patients/break-glass', { title: 'Emergency access', slug: actor.slug, actor, id, reasons: BREAK_GLASS_REASONS, minutes: BREAK_GLASS_MINUTES, form, errors: {}, restored: Boolean(typed), csrfToken: res.locals.csrfToken, error: undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/break-glass — behind step-up. */
    createBreakGlass: (async (req, res) => {
      const actor = actorOf(res);
      const id = patientId(req);
      const parsed = breakGlassForm.safeParse(req.body ?? {});
      if (!parsed.success) {
        if (!(await breakGlassAllowed(d, actor, id, meta(req)))) throw new AccessDenied({ resource: { type: 'patient', id }, patientId: id, permission: 'breakglass.use' });
        const b = (req.body ?? {}) as Record<string, unknown>;
        const form = { reasonCode: typeof b.reasonCode === 'string' ? b.reasonCode : '', justification: typeof b.justification === 'string' ? b.justification.slice(0, 1000) : '' };
        return res.status(400).render('patients/break-glass', { title: 'Emergency access', slug: actor.slug, actor, id, reasons: BREAK_GLASS_REASONS, minutes: BREAK_GLASS_MINUTES, form, restored: false, csrfToken: res.locals.csrfToken, ...formErrors(parsed.error) });
      }
      await breakGlass(d, actor, id, parsed.data, meta(req));
      res.redirect(303, `/p/${actor.slug}/patients/${id}`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/break-glass — uses to review. */
    review: (async (req, res) => {
      const actor = actorOf(res);
      const items = await breakGlassReview(d, actor, meta(req));
      res.render('patients/break-glass-review', { title: 'Emergency access review', slug: actor.slug, actor, items, now: d.clock(), csrfToken: res.locals.csrfToken });
    }) satisfies RequestHandler,

    /** POST /p/:slug/break-glass/:id/review */
    markReviewed: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'break_glass_grant');
      await markReviewed(d, actor, id, meta(req));
      res.redirect(303, `/p/${actor.slug}/break-glass`);
    }) satisfies RequestHandler,
  };
}
