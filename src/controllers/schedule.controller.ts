import type { Request, RequestHandler, Response } from 'express';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { appointmentPage, bookAppointment, bookingChoices, cancelAppointment, moveAppointment, scheduleDay, setAppointmentStatus } from '../services/schedule/schedule.service.js';
import type { Clock } from '../shared/types.js';
import { dayGrid } from '../presenters/schedule.presenter.js';
import { bookingForm, cancelForm, dayQuery, moveForm, statusForm } from '../validation/schedule.schema.js';
import { fieldErrors, resultProblems } from '../validation/text.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface ScheduleControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
}

export const STATUS_LABELS = { scheduled: 'Scheduled', confirmed: 'Confirmed', arrived: 'Arrived', in_chair: 'In the chair', completed: 'Completed', no_show: 'No-show', cancelled: 'Cancelled' } as const;
export const CANCEL_LABELS = { patient_request: 'The patient asked', patient_no_answer: 'The patient did not confirm', practice: 'The practice', illness: 'Illness', weather: 'Weather', rescheduled: 'Rescheduled (a new one is booked)', other: 'Other' } as const;
const labels = { statuses: STATUS_LABELS, cancelReasons: CANCEL_LABELS };
const FIELDS = ['locationId', 'chairId', 'providerId', 'kindId', 'day', 'time', 'minutes', 'note'] as const;
const echo = (req: Request): Record<string, string> => {
  const b = (req.body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(FIELDS.map((k) => [k, typeof b[k] === 'string' ? (b[k] as string).slice(0, 500) : '']));
};

/** The schedule: a location's day, booking from a patient's chart, an appointment's page. */
export function scheduleController(d: ScheduleControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const bookPage = async (req: Request, res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string } = {}) => {
    const actor = actorOf(res);
    const c = await bookingChoices(d, actor, idOf(req, 'patient'), meta(req));
    const q = dayQuery.parse(req.query);
    res.status(status).render('schedule/book', { title: `Book ${c.patientName}`, slug: actor.slug, actor, c, values: extra.values ?? { locationId: c.defaultLocationId, chairId: '', providerId: '', kindId: '', day: q.day ?? new Date(d.clock()).toISOString().slice(0, 10), time: '', minutes: '', note: '' }, errors: extra.errors ?? {}, error: extra.error, csrfToken: res.locals.csrfToken, ...labels });
  };
  const showPage = async (req: Request, res: Response, status: number, extra: { values?: Record<string, string>; errors?: Record<string, string>; error?: string; notice?: string } = {}) => {
    const actor = actorOf(res);
    const page = await appointmentPage(d, actor, idOf(req, 'appointment'), meta(req));
    res.status(status).render('schedule/appointment', { title: 'Appointment', slug: actor.slug, actor, page, values: extra.values ?? { chairId: page.appointment.chairId, providerId: page.appointment.providerId, day: page.day, time: page.time, minutes: String(page.appointment.minutes) }, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken, ...labels });
  };
  const NOTICES: Record<string, string> = { booked: 'Booked.', moved: 'Moved.', status: 'Saved.', cancelled: 'Cancelled: the chair and the provider are free again.' };

  return {
    /** GET /p/:slug/schedule?location=&day= — a location's day, columns per chair. */
    day: (async (req, res) => {
      const actor = actorOf(res);
      const q = dayQuery.parse(req.query);
      const view = await scheduleDay(d, actor, { ...(q.location ? { locationId: q.location } : {}), ...(q.day ? { day: q.day } : {}) }, meta(req));
      const shift = (days: number) => new Date(Date.parse(`${view.day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
      res.render('schedule/day', { title: 'Schedule', slug: actor.slug, actor, view, dayGrid, prevDay: shift(-1), nextDay: shift(1), notice: typeof req.query.done === 'string' ? NOTICES[req.query.done] : undefined, ...labels });
    }) satisfies RequestHandler,

    /** GET /p/:slug/patients/:id/appointments/new */
    new: (async (req, res) => bookPage(req, res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/patients/:id/appointments */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const f = bookingForm.safeParse(req.body ?? {});
      if (!f.success) return bookPage(req, res, 400, { values: echo(req), errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was booked.' });
      const r = await bookAppointment(d, actor, idOf(req, 'patient'), f.data, meta(req));
      if (!r.ok) return bookPage(req, res, 409, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, `/p/${actor.slug}/schedule?location=${f.data.locationId}&day=${f.data.day}&done=booked`);
    }) satisfies RequestHandler,

    /** GET /p/:slug/appointments/:id */
    show: (async (req, res) => showPage(req, res, 200, typeof req.query.done === 'string' && NOTICES[req.query.done] ? { notice: NOTICES[req.query.done] } : {})) satisfies RequestHandler,

    /** POST /p/:slug/appointments/:id/move */
    move: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'appointment');
      const f = moveForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { values: echo(req), errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was moved.' });
      const r = await moveAppointment(d, actor, id, f.data, meta(req));
      if (!r.ok) return showPage(req, res, 409, { values: echo(req), ...resultProblems(r) });
      res.redirect(303, `/p/${actor.slug}/appointments/${id}?done=moved`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/appointments/:id/status */
    status: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'appointment');
      const f = statusForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { error: 'Choose the status.' });
      const r = await setAppointmentStatus(d, actor, id, f.data.status, meta(req));
      if (!r.ok) return showPage(req, res, 409, { error: r.error });
      res.redirect(303, `/p/${actor.slug}/appointments/${id}?done=status`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/appointments/:id/cancel */
    cancel: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'appointment');
      const f = cancelForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { errors: { reason: 'Choose why it is cancelled.' }, error: 'Nothing was cancelled.' });
      const r = await cancelAppointment(d, actor, id, f.data.reason, meta(req));
      if (!r.ok) return showPage(req, res, 409, { error: r.error });
      res.redirect(303, `/p/${actor.slug}/appointments/${id}?done=cancelled`);
    }) satisfies RequestHandler,
  };
}
