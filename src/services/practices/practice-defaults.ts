import type { Knex } from 'knex';
import type { Db } from '../../db/tenant.js';
import { allPracticeIds } from '../../queries/practices.queries.js';
import { ensureDefaultForms } from '../forms/forms.service.js';
import { ensureDefaultRoles } from '../roles/default-roles.service.js';
import { ensureDefaultSchedule } from '../schedule/schedule.service.js';

/**
 * What every practice starts with: the default roles, the default intake and consent forms, the
 * appointment kinds and two chairs per location.
 * Idempotent (by key; edited ones are left alone): run when a practice is created and at every
 * start, so practices created before a new default get it. Runs inside withPractice.
 */
export async function ensurePracticeDefaults(trx: Knex.Transaction, practiceId: string): Promise<void> {
  await ensureDefaultRoles(trx, practiceId);
  await ensureDefaultForms(trx, practiceId);
  await ensureDefaultSchedule(trx, practiceId);
}

/** ensurePracticeDefaults for every practice (at start). */
export async function syncPracticeDefaults(db: Db): Promise<void> {
  for (const practiceId of await allPracticeIds(db.knex)) {
    await db.withPractice(practiceId, { kind: 'system', id: 'defaults' }, (trx) => ensurePracticeDefaults(trx, practiceId));
  }
}
