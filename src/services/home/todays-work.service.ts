import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { patientName } from '../../presenters/patient.presenter.js';
import type { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import { authorize, type Action, type StaffActor } from '../../policies/index.js';
import { overdueReviews } from '../../queries/access-reviews.queries.js';
import { countOpenAlerts } from '../../queries/alerts.queries.js';
import { findPatients, patientSecrets } from '../../queries/patients.queries.js';
import { lockedLinks, presentedPlans, unreviewedBreakGlassCount, unreviewedSubmissions, type WaitingRow } from '../../queries/todays-work.queries.js';
import { findUserById } from '../../queries/users.queries.js';
import type { PatientDeps } from '../patients/patients.service.js';
import { staffCryptoWork, staffEvent } from '../staff-work.js';
import type { Meta } from '../../shared/types.js';
import { requestsDue } from '../../queries/rights.queries.js';
import { DUE_SOON_DAYS } from '../rights/rights.service.js';

/** How many items of each list the home page names (the count says how many more wait). */
export const SHOWN = 8;

export interface WorkItem {
  patientId: string;
  patientName: string;
  /** What waits, in the staff member's words ("Medical history", "Plan presented"). */
  label: string;
  at: Date;
  href: string;
}

export interface WorkList {
  items: WorkItem[];
  /** All the actor may act on, shown or not. */
  total: number;
}

/**
 * Today's work for one staff member: each part only for the roles that act on it. Lists of
 * patients (forms to review, plans presented and waiting, locked links) name each patient, and
 * each name shown is an audited `list` read; counts name nobody.
 */
export interface TodaysWork {
  displayName: string;
  formsToReview?: WorkList;
  plansWaiting?: WorkList;
  lockedLinks?: WorkList;
  openAlerts?: number;
  breakGlassToReview?: number;
  accessReviewDue?: boolean;
  /** Patients' rights requests past their due date and due within a week (holders of rights.manage). */
  rightsDue?: { overdue: number; soon: number };
}

type PatientAction = Extract<Action, 'patient.reviewForms' | 'patient.readPlans' | 'patient.sendLink'>;

async function listFor(
  trx: Knex.Transaction,
  pc: PracticeCrypto,
  actor: StaffActor,
  meta: Meta,
  action: PatientAction,
  rows: WaitingRow[],
  describe: (row: WaitingRow, slug: string) => { label: string; href: string },
): Promise<WorkList> {
  const patients = new Map((await findPatients(trx, [...new Set(rows.map((r) => r.patient_id))])).map((p) => [p.id, p]));
  const mine = rows.filter((r) => {
    const p = patients.get(r.patient_id);
    return p !== undefined && authorize(actor, action, { practiceId: p.practice_id, id: p.id, locationId: p.location_id }, meta.now);
  });
  const items: WorkItem[] = [];
  for (const row of mine.slice(0, SHOWN)) {
    const p = patients.get(row.patient_id)!;
    const plain = await patientSecrets.open(pc, p);
    await audit.record(trx, staffEvent(actor, meta, { action: 'list', resource: { type: 'patient', id: p.id }, patientId: p.id, outcome: 'allowed' }));
    items.push({ patientId: p.id, patientName: patientName(plain), at: row.at, ...describe(row, actor.slug) });
  }
  return { items, total: mine.length };
}

/** The home page's facts, in one tenant transaction. */
export function todaysWork(d: PatientDeps, actor: StaffActor, meta: Meta): Promise<TodaysWork> {
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const user = await findUserById(trx, actor.id);
    const work: TodaysWork = { displayName: user?.display_name ?? '' };
    if (actor.permissions.has('forms.review')) {
      const rows = await unreviewedSubmissions(trx);
      const titles = new Map(rows.map((r) => [r.id, r.title]));
      work.formsToReview = await listFor(trx, pc, actor, meta, 'patient.reviewForms', rows, (r, slug) => ({ label: titles.get(r.id) || 'Form', href: `/p/${slug}/form-submissions/${r.id}` }));
    }
    if (actor.permissions.has('plans.read')) {
      work.plansWaiting = await listFor(trx, pc, actor, meta, 'patient.readPlans', await presentedPlans(trx), (r, slug) => ({ label: 'Plan presented', href: `/p/${slug}/patients/${r.patient_id}/plans` }));
    }
    if (actor.permissions.has('portal.send')) {
      work.lockedLinks = await listFor(trx, pc, actor, meta, 'patient.sendLink', await lockedLinks(trx, meta.now), (r, slug) => ({ label: 'Link locked after wrong dates of birth', href: `/p/${slug}/patients/${r.patient_id}/links` }));
    }
    if (authorize(actor, 'practice.readAlerts')) work.openAlerts = await countOpenAlerts(trx);
    if (authorize(actor, 'patient.reviewBreakGlass')) work.breakGlassToReview = await unreviewedBreakGlassCount(trx);
    if (actor.isOwner || authorize(actor, 'compliance.reviewAccess')) work.accessReviewDue = (await overdueReviews(trx, meta.now)).length > 0;
    if (authorize(actor, 'practice.manageRightsRegister')) work.rightsDue = await requestsDue(trx, meta.now, DUE_SOON_DAYS * 86_400_000);
    return work;
  });
}
