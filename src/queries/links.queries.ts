import type { Knex } from 'knex';

/** The only SQL touching patient links. All but the practice lookup run inside withPractice. */

import type { LinkTask } from '../links/tasks.js';

export { LINK_TASKS, type LinkTask } from '../links/tasks.js';

export type LinkRow = {
  id: string;
  practice_id: string;
  patient_id: string;
  tasks: LinkTask[];
  plan_id: string | null;
  form_template_ids: string[];
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  failed_attempts: number;
  locked_at: Date | null;
  verified_at: Date | null;
};

const COLUMNS = ['id', 'practice_id', 'patient_id', 'tasks', 'plan_id', 'form_template_ids', 'created_at', 'expires_at', 'revoked_at', 'failed_attempts', 'locked_at', 'verified_at'] as const;

/** The practice of a link from its code's hash (SECURITY DEFINER function: the id only). */
export async function linkPracticeId(knex: Knex, codeHash: string): Promise<string | undefined> {
  const r = await knex.raw<{ rows: { id: string | null }[] }>('SELECT enamel_link_practice(?) AS id', [codeHash]);
  return r.rows[0]?.id ?? undefined;
}

export function findLinkByHashForUpdate(trx: Knex.Transaction, codeHash: string): Promise<LinkRow | undefined> {
  return trx('patient_links').where({ code_hash: codeHash }).forUpdate().first(COLUMNS);
}

export function findLink(trx: Knex.Transaction, id: string): Promise<LinkRow | undefined> {
  return trx('patient_links').where({ id }).first(COLUMNS);
}

export function listLinks(trx: Knex.Transaction, patientId: string): Promise<LinkRow[]> {
  return trx('patient_links').where({ patient_id: patientId }).orderBy('created_at', 'desc').limit(50).select(COLUMNS);
}

export async function insertLink(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('patient_links').insert(row);
}

export function updateLink(trx: Knex.Transaction, id: string, change: Partial<Pick<LinkRow, 'revoked_at' | 'failed_attempts' | 'locked_at' | 'verified_at'>>): Promise<number> {
  return trx('patient_links').where({ id }).update(change);
}
