import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { csvDocument } from '../presenters/csv.js';
import { zonedInstant } from '../presenters/format.js';
import {
  addIncidentEvent,
  addPatientsFromAuditLog,
  changeIncidentPatient,
  checkIncident,
  incidentPatients,
  assessIncident,
  closeIncident,
  completeNotice,
  hhsLog,
  incidentLetters,
  incidentPage,
  incidentRegister,
  noticeIncident,
  openIncident,
} from '../services/incidents/incidents.service.js';
import type { Clock } from '../shared/types.js';
import type { FileStore } from '../storage/file-store.js';
import { fieldErrors, resultProblems } from '../validation/text.js';
import { searchPatients } from '../services/patients/patients.service.js';
import { AccessDenied } from '../policies/index.js';
import { assessmentForm, auditQueryForm, patientChangeForm, incidentEventForm, incidentForm, noticeDoneForm } from '../validation/vendors.schema.js';
import { actorOf, idOf, requestMeta } from './request.js';

export interface IncidentsControllerDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
  clock: Clock;
}

export const KIND_LABELS = { unauthorized_access: 'Unauthorized access or use', lost_device: 'Lost or stolen device', misdirected_message: 'Misdirected email, text, fax or letter', ransomware: 'Ransomware', hacking: 'Hacking or IT incident', improper_disposal: 'Improper disposal', other: 'Other' } as const;
export const SYSTEM_LABELS = { records: 'Patient records', images: 'Images and documents', email: 'Email', text_messages: 'Text messages', backups: 'Backups', paper: 'Paper records', device: 'A laptop, phone or drive', other: 'Other' } as const;
const labels = { kinds: KIND_LABELS, systemLabels: SYSTEM_LABELS };
const yearQuery = z.object({ year: z.coerce.number().int().min(2000).max(2100).optional().catch(undefined) });

const text = (req: Request, names: readonly string[]): Record<string, unknown> => {
  const b = (req.body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(names.map((k) => [k, Array.isArray(b[k]) ? (b[k] as unknown[]).filter((x) => typeof x === 'string') : typeof b[k] === 'string' ? (b[k] as string).slice(0, 4000) : '']));
};

/** The incident and breach register (incidents.manage). */
export function incidentsController(d: IncidentsControllerDeps) {
  const meta = (req: Request) => requestMeta(req, d.clock);
  const today = () => new Date(d.clock()).toISOString().slice(0, 10);
  const registerPage = async (res: Response, status: number, extra: { values?: Record<string, unknown>; errors?: Record<string, string>; error?: string } = {}) => {
    const actor = actorOf(res);
    res.status(status).render('incidents/index', { title: 'Incidents', slug: actor.slug, actor, register: await incidentRegister(d, actor, new Date(d.clock())), values: extra.values ?? { kind: '', discoveredOn: today(), discoveredTime: '', occurredOn: '', vendorId: '', systems: [], summary: '', reportedBy: '' }, errors: extra.errors ?? {}, error: extra.error, csrfToken: res.locals.csrfToken, year: new Date(d.clock()).getUTCFullYear(), ...labels });
  };
  type ShowExtra = { form?: string; values?: Record<string, unknown>; errors?: Record<string, string>; error?: string; notice?: string };
  const showPage = (req: Request, res: Response, status: number, extra: ShowExtra = {}) => showPageFor(req, res, idOf(req, 'incident'), status, extra);
  const showPageFor = async (req: Request, res: Response, id: string, status: number, extra: ShowExtra = {}) => {
    const actor = actorOf(res);
    res.status(status).render('incidents/show', { title: 'Incident', slug: actor.slug, actor, i: await incidentPage(d, actor, id, meta(req)), form: extra.form, values: extra.values ?? {}, errors: extra.errors ?? {}, error: extra.error, notice: extra.notice, csrfToken: res.locals.csrfToken, today: today(), ...labels });
  };
  const back = (res: Response, id: string, notice?: string) => res.redirect(303, `/p/${actorOf(res).slug}/incidents/${id}${notice ? `?done=${notice}` : ''}`);
  const NOTICES: Record<string, string> = { opened: 'Incident opened. Add the affected patients and record the risk assessment.', patients: 'Patients added from the audit log.', assessed: 'Assessment recorded; the notices it requires are below with their due dates.', event: 'Added to the timeline.', notice: 'Notice recorded as given.', closed: 'Incident closed. It is kept for six years.' };
  const tz = (res: Response): string => res.locals.fmt?.timeZone ?? 'UTC';

  const patientsPage = async (req: Request, res: Response, q: string) => {
    const actor = actorOf(res);
    const id = idOf(req, 'incident');
    let found: { id: string; name: string; dateOfBirth: string }[] = [];
    let searchError: string | undefined;
    if (q) {
      try {
        found = (await searchPatients(d, actor, q, meta(req), res.locals.fmt?.format)).patients;
      } catch (err) {
        if (!(err instanceof AccessDenied)) throw err;
        searchError = 'Your role cannot search patients: ask someone with access to patients to add them, or use the audit-log search on the incident.';
      }
    }
    res.render('incidents/patients', { title: 'Affected patients', slug: actor.slug, actor, incidentId: id, list: await incidentPatients(d, actor, id, meta(req)), q, found, searchError, error: typeof req.query.error === 'string' ? 'That did not change anything; reload and try again.' : undefined, csrfToken: res.locals.csrfToken });
  };

  return {
    /** GET /p/:slug/incidents */
    index: (async (_req, res) => registerPage(res, 200)) satisfies RequestHandler,

    /** POST /p/:slug/incidents */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const values = text(req, ['kind', 'discoveredOn', 'discoveredTime', 'occurredOn', 'vendorId', 'systems', 'summary', 'reportedBy']);
      const f = incidentForm.safeParse(req.body ?? {});
      if (!f.success) return registerPage(res, 400, { values, errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was saved.' });
      const r = await openIncident(d, actor, { kind: f.data.kind, discoveredAt: zonedInstant(f.data.discoveredOn, f.data.discoveredTime, tz(res)), occurredAt: f.data.occurredOn ? zonedInstant(f.data.occurredOn, '12:00', tz(res)) : null, vendorId: f.data.vendorId ?? null, systems: f.data.systems, summary: f.data.summary, reportedBy: f.data.reportedBy }, meta(req));
      if (!r.ok) return registerPage(res, 400, { values, ...resultProblems(r) });
      back(res, r.value, 'opened');
    }) satisfies RequestHandler,

    /** GET /p/:slug/incidents/:id */
    show: (async (req, res) => showPage(req, res, 200, typeof req.query.done === 'string' && NOTICES[req.query.done] ? { notice: NOTICES[req.query.done] } : {})) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/patients — every patient an account touched in a window, from the audit log. */
    addPatients: (async (req, res) => {
      const id = idOf(req, 'incident');
      const values = text(req, ['userId', 'fromDay', 'fromTime', 'toDay', 'toTime']);
      const f = auditQueryForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { form: 'patients', values, errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was added.' });
      const r = await addPatientsFromAuditLog(d, actorOf(res), id, { userId: f.data.userId, from: zonedInstant(f.data.fromDay, f.data.fromTime, tz(res)), to: zonedInstant(f.data.toDay, f.data.toTime || '23:59', tz(res)) }, meta(req));
      if (!r.ok) return showPage(req, res, 400, { form: 'patients', values, ...resultProblems(r) });
      back(res, id, 'patients');
    }) satisfies RequestHandler,

    /** GET /p/:slug/incidents/:id/patients — the affected patients by name. */
    patients: (async (req, res) => patientsPage(req, res, '')) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/patients/find — a patient search (POST: a name never goes into a URL). */
    findPatient: (async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      return patientsPage(req, res, typeof body.q === 'string' ? body.q.trim().slice(0, 100) : '');
    }) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/patients/change — add (from the search) or remove one patient. */
    changePatient: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'incident');
      const f = patientChangeForm.safeParse(req.body ?? {});
      if (!f.success) {
        await checkIncident(d, actor, id);
        return res.redirect(303, `/p/${actor.slug}/incidents/${id}/patients?error=1`);
      }
      const r = await changeIncidentPatient(d, actor, id, f.data.patientId, f.data.change, meta(req));
      res.redirect(303, `/p/${actor.slug}/incidents/${id}/patients${r.ok ? '' : '?error=1'}`);
    }) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/assessment */
    assess: (async (req, res) => {
      const id = idOf(req, 'incident');
      const values = text(req, ['nature', 'recipient', 'acquired', 'mitigation', 'advice', 'outcome']);
      const f = assessmentForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { form: 'assessment', values, errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was saved.' });
      const r = await assessIncident(d, actorOf(res), id, f.data, meta(req));
      if (!r.ok) return showPage(req, res, 409, { form: 'assessment', values, ...resultProblems(r) });
      back(res, id, 'assessed');
    }) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/events */
    addEvent: (async (req, res) => {
      const id = idOf(req, 'incident');
      const values = text(req, ['kind', 'on', 'body']);
      const f = incidentEventForm.safeParse(req.body ?? {});
      if (!f.success) return showPage(req, res, 400, { form: 'event', values, errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was saved.' });
      await addIncidentEvent(d, actorOf(res), id, { kind: f.data.kind, at: zonedInstant(f.data.on, '12:00', tz(res)), body: f.data.body }, meta(req));
      back(res, id, 'event');
    }) satisfies RequestHandler,

    /** POST /p/:slug/incident-tasks/:id/done */
    noticeDone: (async (req, res) => {
      const taskId = idOf(req, 'incident');
      const f = noticeDoneForm.safeParse(req.body ?? {});
      const incidentId = await noticeIncident(d, actorOf(res), taskId);
      const toIncident = (status: number, extra: { errors: Record<string, string>; error?: string }) => showPageFor(req, res, incidentId, status, { form: `notice-${taskId}`, values: text(req, ['doneOn', 'evidence']), ...extra });
      if (!f.success) return toIncident(400, { errors: fieldErrors(f.error), error: 'Some answers need attention; nothing was saved.' });
      const r = await completeNotice(d, actorOf(res), taskId, { doneAt: zonedInstant(f.data.doneOn, '12:00', tz(res)), evidence: f.data.evidence }, meta(req));
      if (!r.ok) return toIncident(409, resultProblems(r));
      back(res, r.value, 'notice');
    }) satisfies RequestHandler,

    /** POST /p/:slug/incidents/:id/close */
    close: (async (req, res) => {
      const id = idOf(req, 'incident');
      const r = await closeIncident(d, actorOf(res), id, meta(req));
      if (!r.ok) return showPage(req, res, 409, { error: r.error });
      back(res, id, 'closed');
    }) satisfies RequestHandler,

    /** GET /p/:slug/incidents/:id/letters — the notification letters, to print (each patient named is an audited print). */
    letters: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'incident');
      res.render('incidents/letters', { title: 'Notification letters', slug: actor.slug, actor, incidentId: id, l: await incidentLetters(d, actor, id, meta(req)), today: new Date(d.clock()) });
    }) satisfies RequestHandler,

    /** GET /p/:slug/incidents-log.csv?year=YYYY — the HHS annual log of breaches. */
    hhsLog: (async (req, res) => {
      const year = yearQuery.parse(req.query).year ?? new Date(d.clock()).getUTCFullYear();
      const [header, ...rows] = await hhsLog(d, actorOf(res), year, meta(req));
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="breach-log-${year}.csv"`);
      res.send(csvDocument(header!, rows));
    }) satisfies RequestHandler,
  };
}
