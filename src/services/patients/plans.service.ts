import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { addressLines } from '../../presenters/location.presenter.js';
import { presentSummary, type PatientSummaryView } from '../../presenters/patient.presenter.js';
import { decisionSecrets, deleteItem, findItem, findPlan, insertDecision, insertItem, insertPlan, listItems, listPlans, planItemSecrets, planSecrets, updatePlan, type PlanItemRow, type PlanRow, type PlanStatus } from '../../queries/plans.queries.js';
import { patientSecrets } from '../../queries/patients.queries.js';
import { findCurrentPractice, listLocations } from '../../queries/practices.queries.js';
import type { Meta } from '../../shared/types.js';
import { loadPatientRecord } from './patients.service.js';
import type { Signer } from '../../validation/signature.schema.js';
import type { LinkSession } from '../links/link-work.js';
import { staffEvent as event, staffCryptoWork as work } from '../staff-work.js';

/**
 * Treatment plans: phases of items, totals computed here (never trusted from a form), status
 * draft → presented → accepted / declined. Acceptance fixes the SHA-256 of the plan's canonical
 * content; the database then refuses any change to the plan or its items.
 */

export interface PlanDeps {
  db: Db;
  keyring: Keyring;
}

import type { ItemContent } from '../../queries/plans.queries.js';
import type { AmendmentShown } from '../../presenters/patient.presenter.js';
import { amendmentViews } from '../rights/rights.service.js';
export type { ItemContent };

export interface ItemView extends ItemContent {
  id: string;
  phase: number;
  patient: number;
}

export interface Totals {
  fee: number;
  insurance: number;
  patient: number;
}

export interface PlanView {
  /** Amendments the patient asked for (§164.526), decided: shown and printed beside the plan, which is unchanged. */
  patientAmendments?: AmendmentShown[];
  id: string;
  title: string;
  status: PlanStatus;
  phases: { phase: number; items: ItemView[]; totals: Totals }[];
  totals: Totals;
  createdAt: Date;
  presentedAt: Date | null;
  decidedAt: Date | null;
  acceptedHash: string | null;
  /** The content hash now; equal to acceptedHash for an accepted plan (anything else is tampering). */
  contentHash: string;
  editable: boolean;
}



const sum = (items: readonly ItemContent[]): Totals => {
  const fee = items.reduce((a, i) => a + i.fee, 0);
  const insurance = items.reduce((a, i) => a + i.insurance, 0);
  return { fee, insurance, patient: fee - insurance };
};

/**
 * The canonical content an acceptance fixes: plan id, title and every item (by phase and id) with
 * its code, tooth, surfaces, description and amounts — as JSON with a fixed key order.
 */
export function planContentHash(planId: string, title: string, items: readonly (ItemContent & { id: string; phase: number })[]): string {
  const sorted = [...items].sort((a, b) => a.phase - b.phase || a.id.localeCompare(b.id));
  const canonical = JSON.stringify([1, planId, title, sorted.map((i) => [i.id, i.phase, i.cdt, i.tooth, i.surfaces, i.description, i.fee, i.insurance])]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

async function openPlan(pc: PracticeCrypto, plan: PlanRow, items: PlanItemRow[], editable: boolean): Promise<PlanView> {
  const title = (await planSecrets.open(pc, plan)).title ?? '';
  const opened: ItemView[] = [];
  for (const it of items) {
    const c = (await planItemSecrets.open(pc, it)).content as ItemContent;
    opened.push({ ...c, id: it.id, phase: it.phase, patient: c.fee - c.insurance });
  }
  const phases = [...new Set(opened.map((i) => i.phase))].sort((a, b) => a - b).map((phase) => {
    const inPhase = opened.filter((i) => i.phase === phase);
    return { phase, items: inPhase, totals: sum(inPhase) };
  });
  return {
    id: plan.id,
    title,
    status: plan.status,
    phases,
    totals: sum(opened),
    createdAt: plan.created_at,
    presentedAt: plan.presented_at,
    decidedAt: plan.decided_at,
    acceptedHash: plan.accepted_hash,
    contentHash: planContentHash(plan.id, title, opened),
    editable: editable && (plan.status === 'draft' || plan.status === 'presented'),
  };
}

export interface PlansPage {
  patient: PatientSummaryView;
  canWrite: boolean;
  plans: PlanView[];
}

export async function plansPage(d: PlanDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<PlansPage> {
  return work(d, actor, async (trx, pc) => {
    const { row, record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.readPlans', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'plans.read' });
    const plans = await listPlans(trx, patientId);
    await audit.record(trx, event(actor, meta, { action: 'view', resource: { type: 'treatment_plan' }, patientId, outcome: 'allowed', details: { count: plans.length } }));
    const items = await listItems(trx, plans.map((p) => p.id));
    const canWrite = authorize(actor, 'patient.writePlans', record, meta.now);
    const requested = (await amendmentViews(trx, pc, [patientId])).filter((a) => a.targetType === 'treatment_plan' && a.decision !== 'pending');
    const views: PlanView[] = [];
    for (const plan of plans) views.push({ ...(await openPlan(pc, plan, items.filter((i) => i.plan_id === plan.id), canWrite)), patientAmendments: requested.filter((a) => a.targetId === plan.id) });
    return { patient: presentSummary(row, await patientSecrets.open(pc, row), new Map((await listLocations(trx)).map((l) => [l.id, l.name]))), canWrite, plans: views };
  });
}

export async function createPlan(d: PlanDeps, actor: StaffActor, patientId: string, title: string, meta: Meta): Promise<string> {
  return work(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    ensure(authorize(actor, 'patient.writePlans', record, meta.now), { resource: { type: 'patient', id: patientId }, patientId, permission: 'plans.write' });
    const id = randomUUID();
    await insertPlan(trx, { id, practice_id: actor.practiceId, patient_id: patientId, status: 'draft', created_by: actor.id, ...(await planSecrets.seal(pc, id, { title })) });
    await audit.record(trx, event(actor, meta, { action: 'create', resource: { type: 'treatment_plan', id }, patientId, outcome: 'allowed' }));
    return id;
  });
}

/** SECURITY: the plan, in the practice and reachable for writing by this actor. */
async function planForWrite(trx: Knex.Transaction, actor: StaffActor, planId: string, meta: Meta): Promise<PlanRow> {
  const plan = await findPlan(trx, planId, { forUpdate: true });
  if (!plan) throw new AccessDenied({ resource: { type: 'treatment_plan', id: planId } });
  const { record } = await loadPatientRecord(trx, actor, plan.patient_id, meta.now);
  ensure(authorize(actor, 'patient.writePlans', record, meta.now), { resource: { type: 'treatment_plan', id: planId }, patientId: plan.patient_id, permission: 'plans.write' });
  return plan;
}

/** The patient of a plan the actor may write to (the access check alone). */
export async function planPatient(d: PlanDeps, actor: StaffActor, planId: string, meta: Meta): Promise<string> {
  return work(d, actor, async (trx) => (await planForWrite(trx, actor, planId, meta)).patient_id);
}

export type PlanResult = { ok: true; patientId: string } | { ok: false; patientId: string; error: string };

const DECIDED = 'This plan was accepted or declined and can no longer change. Start a new plan for new treatment.';

export async function addItem(d: PlanDeps, actor: StaffActor, planId: string, phase: number, content: ItemContent, meta: Meta): Promise<PlanResult> {
  return work(d, actor, async (trx, pc) => {
    const plan = await planForWrite(trx, actor, planId, meta);
    if (plan.status === 'accepted' || plan.status === 'declined') return { ok: false, patientId: plan.patient_id, error: DECIDED };
    const id = randomUUID();
    await insertItem(trx, { id, practice_id: actor.practiceId, plan_id: planId, phase, ...(await planItemSecrets.seal(pc, id, { content })) });
    await audit.record(trx, event(actor, meta, { action: 'update', resource: { type: 'treatment_plan', id: planId }, patientId: plan.patient_id, outcome: 'allowed', details: { count: 1 } }));
    return { ok: true, patientId: plan.patient_id };
  });
}

export async function removeItem(d: PlanDeps, actor: StaffActor, itemId: string, meta: Meta): Promise<PlanResult> {
  return work(d, actor, async (trx) => {
    const item = await findItem(trx, itemId);
    if (!item) throw new AccessDenied({ resource: { type: 'treatment_plan_item', id: itemId } });
    const plan = await planForWrite(trx, actor, item.plan_id, meta);
    if (plan.status === 'accepted' || plan.status === 'declined') return { ok: false, patientId: plan.patient_id, error: DECIDED };
    await deleteItem(trx, itemId);
    await audit.record(trx, event(actor, meta, { action: 'update', resource: { type: 'treatment_plan', id: plan.id }, patientId: plan.patient_id, outcome: 'allowed', details: { count: 1 } }));
    return { ok: true, patientId: plan.patient_id };
  });
}

/**
 * present: draft → presented (a plan needs an item first). accept / decline: the patient's decision,
 * recorded by staff (a patient link records it itself: decideByLink). Acceptance stores the hash of
 * exactly what was accepted.
 */
export async function decide(d: PlanDeps, actor: StaffActor, planId: string, step: 'present' | 'accept' | 'decline', meta: Meta, shownHash?: string): Promise<PlanResult> {
  return work(d, actor, async (trx, pc) => {
    const plan = await planForWrite(trx, actor, planId, meta);
    const base = { resource: { type: 'treatment_plan' as const, id: planId }, patientId: plan.patient_id };
    if (plan.status === 'accepted' || plan.status === 'declined') return { ok: false, patientId: plan.patient_id, error: DECIDED };
    if (step === 'present') {
      if ((await listItems(trx, [planId])).length === 0) return { ok: false, patientId: plan.patient_id, error: 'Add at least one item before presenting the plan.' };
      await updatePlan(trx, planId, { status: 'presented', presented_at: meta.now });
      await audit.record(trx, event(actor, meta, { ...base, action: 'share', outcome: 'allowed' }));
      return { ok: true, patientId: plan.patient_id };
    }
    if (plan.status !== 'presented') return { ok: false, patientId: plan.patient_id, error: 'Present the plan to the patient before recording their decision.' };
    const items = await listItems(trx, [planId]);
    if (step === 'accept' && items.length === 0) return { ok: false, patientId: plan.patient_id, error: 'An empty plan cannot be accepted.' };
    const view = await openPlan(pc, plan, items, false);
    const allItems = view.phases.flatMap((p) => p.items);
    // The decision is recorded for the plan the page showed: one changed since (another tab, a colleague) is refused.
    if (shownHash !== view.contentHash) return { ok: false, patientId: plan.patient_id, error: 'This plan changed since the page was loaded. Check it below, then record the patient\u2019s decision again.' };
    await updatePlan(trx, planId, {
      status: step === 'accept' ? 'accepted' : 'declined',
      decided_at: meta.now,
      decided_by: `user:${actor.id}`,
      accepted_hash: step === 'accept' ? planContentHash(planId, view.title, allItems) : null,
    });
    await audit.record(trx, event(actor, meta, { ...base, action: step === 'accept' ? 'accept' : 'decline', outcome: 'allowed', details: { count: allItems.length } }));
    return { ok: true, patientId: plan.patient_id };
  });
}

/** The letterhead of a printed plan: the practice and the patient's location (business details, no PHI). */
export interface PrintHeader {
  practiceName: string;
  locationName: string;
  addressLines: string[];
  phone: string;
}

/** The printable view of one plan; printing is audited. */
export async function printPlan(d: PlanDeps, actor: StaffActor, planId: string, meta: Meta): Promise<{ patient: PatientSummaryView; plan: PlanView; header: PrintHeader }> {
  return work(d, actor, async (trx, pc) => {
    const plan = await findPlan(trx, planId);
    if (!plan) throw new AccessDenied({ resource: { type: 'treatment_plan', id: planId } });
    const { row, record } = await loadPatientRecord(trx, actor, plan.patient_id, meta.now);
    ensure(authorize(actor, 'patient.readPlans', record, meta.now), { resource: { type: 'treatment_plan', id: planId }, patientId: plan.patient_id, permission: 'plans.read' });
    await audit.record(trx, event(actor, meta, { action: 'print', resource: { type: 'treatment_plan', id: planId }, patientId: plan.patient_id, outcome: 'allowed', details: { format: 'html' } }));
    const view = { ...(await openPlan(pc, plan, await listItems(trx, [planId]), false)), patientAmendments: (await amendmentViews(trx, pc, [plan.patient_id])).filter((a) => a.targetType === 'treatment_plan' && a.targetId === planId && a.decision !== 'pending') };
    const locations = await listLocations(trx);
    const here = locations.find((l) => l.id === row.location_id);
    const header: PrintHeader = {
      practiceName: (await findCurrentPractice(trx))?.name ?? '',
      locationName: here?.name ?? '',
      addressLines: here ? addressLines(here) : [],
      phone: here?.phone ?? '',
    };
    return { patient: presentSummary(row, await patientSecrets.open(pc, row), new Map(locations.map((l) => [l.id, l.name])), meta.now), plan: view, header };
  });
}

/** The plan a patient link was sent for, as the patient sees it (audited with actor "patient link"). */
export async function planForLink(d: PlanDeps, link: LinkSession, meta: Meta): Promise<PlanView> {
  return d.db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, async (trx) => {
    const plan = link.planId && link.tasks.includes('plan_review') ? await findPlan(trx, link.planId) : undefined;
    // SECURITY: only the plan this link was made for, of this link's patient.
    if (!plan || plan.patient_id !== link.patientId) throw new AccessDenied({ resource: { type: 'treatment_plan' } });
    await audit.record(trx, { practiceId: link.practiceId, actor: { kind: 'patient_link', id: link.linkId }, action: 'view', resource: { type: 'treatment_plan', id: plan.id }, patientId: plan.patient_id, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId });
    return openPlan(new PracticeCrypto(d.keyring, trx, link.practiceId), plan, await listItems(trx, [plan.id]), false);
  });
}

/**
 * Whether the link's plan still waits for the patient's decision (the portal's task list): the
 * status only — no title, item or amount, so nothing of the plan's content is read.
 */
export async function linkPlanStatus(d: PlanDeps, link: LinkSession): Promise<string | undefined> {
  if (!link.planId || !link.tasks.includes('plan_review')) return undefined;
  return d.db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, async (trx) => {
    const plan = await findPlan(trx, link.planId!);
    return plan && plan.patient_id === link.patientId ? plan.status : undefined;
  });
}

/** The presented plans a link can be sent for (the staff links page). */
export async function listPlanChoices(d: PlanDeps, actor: StaffActor, patientId: string, meta: Meta): Promise<{ id: string; title: string }[]> {
  return work(d, actor, async (trx, pc) => {
    const { record } = await loadPatientRecord(trx, actor, patientId, meta.now);
    if (!authorize(actor, 'patient.readPlans', record, meta.now)) return [];
    const plans = (await listPlans(trx, patientId)).filter((p) => p.status === 'presented');
    // SECURITY: plan titles are clinical: the read is audited like any other view of the plans.
    await audit.record(trx, event(actor, meta, { action: 'list', resource: { type: 'treatment_plan' }, patientId, outcome: 'allowed', details: { count: plans.length } }));
    const out: { id: string; title: string }[] = [];
    for (const p of plans) out.push({ id: p.id, title: (await planSecrets.open(pc, p)).title ?? '' });
    return out;
  });
}

/**
 * The patient's decision through their link: the plan must still be presented, and still be what
 * the page showed (`shownHash`, the content hash the page carried): a plan the office changed
 * meanwhile is refused and shown again. Acceptance fixes that hash. The record keeps the typed name
 * and signature (encrypted), time, IP and user agent; the plan's status changes with it.
 */
export async function decideByLink(
  d: PlanDeps,
  link: LinkSession,
  input: { decision: 'accepted' | 'declined'; shownHash: string; signer: Signer; userAgent: string },
  meta: Meta,
): Promise<{ ok: true } | { ok: false; error: string }> {
  return d.db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, async (trx) => {
    const plan = link.planId && link.tasks.includes('plan_review') ? await findPlan(trx, link.planId, { forUpdate: true }) : undefined;
    if (!plan || plan.patient_id !== link.patientId) throw new AccessDenied({ resource: { type: 'treatment_plan' } });
    if (plan.status !== 'presented') return { ok: false, error: 'This plan has already been decided. Please contact the office with any questions.' };
    const pc = new PracticeCrypto(d.keyring, trx, link.practiceId);
    const view = await openPlan(pc, plan, await listItems(trx, [plan.id]), false);
    const hash = planContentHash(plan.id, view.title, view.phases.flatMap((p) => p.items));
    if (hash !== input.shownHash) return { ok: false, error: 'The office changed this plan while you were reading it. Please review it again below, then decide.' };
    const id = randomUUID();
    await insertDecision(trx, { id, practice_id: link.practiceId, plan_id: plan.id, link_id: link.linkId, decision: input.decision, plan_hash: hash, decided_at: meta.now, client_ip: meta.ip, user_agent: input.userAgent.slice(0, 400), ...(await decisionSecrets.seal(pc, id, { signer: input.signer })) });
    await updatePlan(trx, plan.id, { status: input.decision, decided_at: meta.now, decided_by: `patient_link:${link.linkId}`, accepted_hash: input.decision === 'accepted' ? hash : null });
    await audit.record(trx, { practiceId: link.practiceId, actor: { kind: 'patient_link', id: link.linkId }, action: input.decision === 'accepted' ? 'accept' : 'decline', resource: { type: 'treatment_plan', id: plan.id }, patientId: plan.patient_id, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId, details: { reference_id: id } });
    return { ok: true };
  });
}
