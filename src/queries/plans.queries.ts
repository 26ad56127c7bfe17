import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching treatment plans. Runs inside withPractice. */

export const planSecrets = encryptedColumns('treatment_plans', { title: { type: 'text' } });
/** What a plan item says (its encrypted envelope's content). */
export interface ItemContent {
  cdt: string;
  tooth: string | null;
  surfaces: string | null;
  description: string;
  /** Cents. */
  fee: number;
  /** Cents; never more than the fee. */
  insurance: number;
}

/** An item's CDT code, tooth, surfaces, description, fee and estimate: one envelope. */
export const planItemSecrets = encryptedColumns('treatment_plan_items', { content: { type: 'json' } });

export type PlanStatus = 'draft' | 'presented' | 'accepted' | 'declined';

export type PlanRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  title: Buffer;
  status: PlanStatus;
  created_by: string;
  presented_at: Date | null;
  decided_at: Date | null;
  decided_by: string | null;
  accepted_hash: string | null;
  created_at: Date;
};

export type PlanItemRow = { id: string; plan_id: string; phase: number; content: Buffer; created_at: Date };

const PLAN_COLUMNS = ['id', 'practice_id', 'patient_id', 'title', 'status', 'created_by', 'presented_at', 'decided_at', 'decided_by', 'accepted_hash', 'created_at'] as const;

export function listPlans(trx: Knex.Transaction, patientId: string): Promise<PlanRow[]> {
  return trx('treatment_plans').where({ patient_id: patientId }).orderBy('created_at', 'desc').select(PLAN_COLUMNS);
}

export function findPlan(trx: Knex.Transaction, id: string, options: { forUpdate?: boolean } = {}): Promise<PlanRow | undefined> {
  const q = trx('treatment_plans').where({ id });
  if (options.forUpdate) q.forUpdate();
  return q.first(PLAN_COLUMNS);
}

export function listItems(trx: Knex.Transaction, planIds: readonly string[]): Promise<PlanItemRow[]> {
  return planIds.length ? trx('treatment_plan_items').whereIn('plan_id', planIds).orderBy([{ column: 'phase' }, { column: 'created_at' }, { column: 'id' }]).select('id', 'plan_id', 'phase', 'content', 'created_at') : Promise.resolve([]);
}

export function findItem(trx: Knex.Transaction, id: string): Promise<PlanItemRow | undefined> {
  return trx('treatment_plan_items').where({ id }).first('id', 'plan_id', 'phase', 'content', 'created_at');
}

export async function insertPlan(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('treatment_plans').insert(row);
}

export async function insertItem(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('treatment_plan_items').insert(row);
}

export function deleteItem(trx: Knex.Transaction, id: string): Promise<number> {
  return trx('treatment_plan_items').where({ id }).delete();
}

export function updatePlan(trx: Knex.Transaction, id: string, change: Record<string, unknown>): Promise<number> {
  return trx('treatment_plans').where({ id }).update({ ...change, updated_at: trx.fn.now() });
}

/** The typed full name and signature of a patient's decision (encrypted together). */
export const decisionSecrets = encryptedColumns('plan_decisions', { signer: { type: 'json' } });

export async function insertDecision(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('plan_decisions').insert(row);
}

export function findDecision(trx: Knex.Transaction, planId: string): Promise<{ decision: string; plan_hash: string; decided_at: Date } | undefined> {
  return trx('plan_decisions').where({ plan_id: planId }).first('decision', 'plan_hash', 'decided_at');
}
