import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { form, formProblems } from '../validation/text.js';
import type { Clock, Meta } from '../shared/types.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import { addItem, createPlan, decide, planPatient, plansPage, printPlan, removeItem } from '../services/patients/plans.service.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface PlansControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

/** Dollars as typed ("1,250.00", "$80") → cents; the form never supplies totals. */
const money = (label: string) =>
  z
    .string()
    .trim()
    .transform((v) => v.replace(/[$,\s]/g, ''))
    .pipe(z.string().regex(/^\d{1,6}(\.\d{1,2})?$/, `${label}: enter an amount in dollars, e.g. 125.00.`))
    .transform((v) => Math.round(Number(v) * 100));

const itemForm = z
  .object({
    phase: z.coerce.number('Choose a phase from 1 to 9.').int().min(1, 'Choose a phase from 1 to 9.').max(9, 'Choose a phase from 1 to 9.'),
    cdt: z.string().trim().toUpperCase().regex(/^D\d{4}$/, 'A CDT code is D followed by four digits, e.g. D2391.'),
    tooth: z.string().trim().toUpperCase().regex(/^(?:[1-9]|[12]\d|3[0-2]|[A-T])?$/, 'Tooth: 1–32 (permanent) or A–T (primary), or leave it empty.').transform((v) => v || null),
    surfaces: z.string().trim().toUpperCase().regex(/^[MODBLFI]{0,5}$/, 'Surfaces: letters from M, O, D, B, L, F, I (up to five), or leave it empty.').transform((v) => v || null),
    description: z.string().trim().min(1, 'Describe the procedure.').max(200, 'Keep the description under 200 characters.'),
    fee: money('Fee'),
    insurance: money('Insurance estimate'),
  })
  // Compared only once both amounts read (a bad fee is its own error, not the estimate's).
  .refine((f) => typeof f.fee !== 'number' || typeof f.insurance !== 'number' || f.insurance <= f.fee, { message: 'The insurance estimate cannot be more than the fee.', path: ['insurance'] });

const ITEM_FIELDS = ['phase', 'cdt', 'tooth', 'surfaces', 'description', 'fee', 'insurance'] as const;

const planForm = form({ title: z.string().trim().min(1, 'Give the plan a title, e.g. Phase 1 — restorative.').max(120, 'Keep the title under 120 characters.') });
const stepForm = form({ step: z.enum(['present', 'accept', 'decline']), planHash: z.string().regex(/^[0-9a-f]{64}$/).optional() });


/** Treatment plans: list with totals, new plan, items, present / accept / decline, print. */
export function plansController(d: PlansControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const render = async (req: Request, res: Response, patientId: string, status: number, extra: { error?: string; errors?: Record<string, string>; titleTyped?: string; notice?: string; item?: { planId: string; values: Record<string, string>; errors: Record<string, string> } } = {}) => {
    const actor = actorOf(res);
    const page = await plansPage(d, actor, patientId, meta(req));
    res.status(status).render('patients/plans', { title: `Treatment plans: ${page.patient.name}`, slug: actor.slug, actor, page, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, titleTyped: '', notice: undefined, item: undefined, ...extra });
  };
  const after = (res: Response, patientId: string) => res.redirect(303, `/p/${actorOf(res).slug}/patients/${patientId}/plans`);

  return {
    /** GET /p/:slug/patients/:id/plans */
    index: (async (req, res) => render(req, res, idOf(req, 'patient'), 200)) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/plans */
    create: (async (req, res) => {
      const patientId = idOf(req, 'patient');
      const form = planForm.safeParse(req.body ?? {});
      if (!form.success) return render(req, res, patientId, 400, { ...formProblems(form.error), titleTyped: typeof (req.body as Record<string, unknown> | undefined)?.title === 'string' ? String((req.body as Record<string, unknown>).title).slice(0, 120) : '' });
      await createPlan(d, actorOf(res), patientId, form.data.title, meta(req));
      after(res, patientId);
    }) satisfies RequestHandler,

    /** POST /p/:slug/plans/:id/items */
    addItem: (async (req, res) => {
      const planId = idOf(req, 'treatment_plan');
      const form = itemForm.safeParse(req.body ?? {});
      // A malformed item: the plan's page again with the reason (after the same access check).
      const { phase, ...content } = form.success ? form.data : { phase: 1, cdt: '', tooth: null, surfaces: null, description: '', fee: 0, insurance: 0 };
      if (!form.success) {
        const problems = formProblems(form.error);
        const b = (req.body ?? {}) as Record<string, unknown>;
        const values = Object.fromEntries(ITEM_FIELDS.map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 200) : '']));
        return render(req, res, await planPatient(d, actorOf(res), planId, meta(req)), 400, { error: problems.error, item: { planId, values, errors: problems.errors } });
      }
      const result = await addItem(d, actorOf(res), planId, phase, content, meta(req));
      if (!result.ok) return render(req, res, result.patientId, 409, { error: result.error });
      after(res, result.patientId);
    }) satisfies RequestHandler,

    /** POST /p/:slug/plan-items/:id/delete */
    removeItem: (async (req, res) => {
      const result = await removeItem(d, actorOf(res), idOf(req, 'treatment_plan'), meta(req));
      if (!result.ok) return render(req, res, result.patientId, 409, { error: result.error });
      after(res, result.patientId);
    }) satisfies RequestHandler,

    /** POST /p/:slug/plans/:id/status */
    decide: (async (req, res) => {
      const planId = idOf(req, 'treatment_plan');
      const form = stepForm.safeParse(req.body ?? {});
      if (!form.success) throw new AccessDenied({ resource: { type: 'treatment_plan', id: planId } });
      const result = await decide(d, actorOf(res), planId, form.data.step, meta(req), form.data.planHash);
      if (!result.ok) return render(req, res, result.patientId, 409, { error: result.error });
      after(res, result.patientId);
    }) satisfies RequestHandler,

    /** GET /p/:slug/plans/:id/print */
    print: (async (req, res) => {
      const actor = actorOf(res);
      const { patient, plan, header } = await printPlan(d, actor, idOf(req, 'treatment_plan'), meta(req));
      res.render('patients/plan-print', { title: `Treatment plan: ${patient.name}`, slug: actor.slug, patient, plan, header, printedAt: new Date(d.clock()) });
    }) satisfies RequestHandler,
  };
}
