import type { Knex } from 'knex';

/**
 * The work waiting in a practice, oldest first, for the home page. Ids and times only: the
 * service decrypts the patient names it shows, and audits each.
 */

/** How many rows each list reads before the location filter (the page shows the first few). */
export const WORK_SCAN = 200;

export type WaitingRow = { id: string; patient_id: string; at: Date };

/** Submitted forms nobody has reviewed. */
export function unreviewedSubmissions(trx: Knex.Transaction): Promise<(WaitingRow & { title: string })[]> {
  return trx('form_submissions as s')
    .join('form_template_versions as v', 'v.id', 's.template_version_id')
    .whereNull('s.reviewed_at')
    .orderBy('s.submitted_at')
    .limit(WORK_SCAN)
    .select('s.id', 's.patient_id', 's.submitted_at as at', trx.raw("v.definition->>'title' AS title"));
}

/** Plans shown to the patient and not yet accepted or declined. */
export function presentedPlans(trx: Knex.Transaction): Promise<WaitingRow[]> {
  return trx('treatment_plans').where({ status: 'presented' }).orderBy('presented_at').limit(WORK_SCAN).select('id', 'patient_id', 'presented_at as at');
}

/** Links locked by wrong dates of birth that would otherwise still be open. */
export function lockedLinks(trx: Knex.Transaction, now: Date): Promise<WaitingRow[]> {
  return trx('patient_links').whereNotNull('locked_at').whereNull('revoked_at').where('expires_at', '>', now).orderBy('locked_at').limit(WORK_SCAN).select('id', 'patient_id', 'locked_at as at');
}

/** Emergency-access grants nobody has reviewed yet. */
export async function unreviewedBreakGlassCount(trx: Knex.Transaction): Promise<number> {
  const row = await trx('break_glass_grants').whereNull('reviewed_at').count<{ n: string }[]>('* as n').first();
  return Number(row?.n ?? 0);
}
