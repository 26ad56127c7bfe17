import type { Knex } from 'knex';

/** The practices whose encrypted data a restore samples (every one but the installation). */
export async function practiceIdsToSample(knex: Knex): Promise<string[]> {
  const r = await knex.raw<{ rows: { id: string }[] }>('SELECT enamel_audit_chain_ids() AS id');
  return r.rows.map((x) => x.id).filter((id) => id !== '00000000-0000-0000-0000-000000000000');
}

/** Up to `limit` rows of a declared encrypted table, in the transaction's practice (RLS). */
export function sampleRows(trx: Knex.Transaction, table: string, limit: number): Promise<({ id: string } & Record<string, unknown>)[]> {
  return trx(table).orderBy('id').limit(limit).select('*');
}

/** The hash of the chain's event at `seq` (hex), in the transaction's practice. */
export async function chainHashAt(trx: Knex.Transaction, seq: string): Promise<string | undefined> {
  const row = await trx('audit_events').where({ seq }).first<{ hash: Buffer } | undefined>('hash');
  return row?.hash.toString('hex');
}

export interface RestoreDrillRow {
  id: string;
  ran_at: Date;
  backup_id: string | null;
  backup_created_at: Date | null;
  outcome: 'passed' | 'failed';
  rpo_seconds: number | null;
  rto_seconds: number | null;
  tables: number;
  rows: number;
  files: number;
  chains: number;
  failure: string | null;
}

/** Records a restore drill (installation level: no practice's data in it). */
export async function insertRestoreDrill(trx: Knex.Transaction, row: Omit<RestoreDrillRow, 'id' | 'ran_at'> & { ran_at: Date }): Promise<void> {
  await trx('restore_drills').insert({ practice_id: '00000000-0000-0000-0000-000000000000', ...row });
}

export function recentRestoreDrills(trx: Knex.Transaction, limit: number): Promise<RestoreDrillRow[]> {
  return trx('restore_drills').orderBy('ran_at', 'desc').limit(limit).select<RestoreDrillRow[]>('id', 'ran_at', 'backup_id', 'backup_created_at', 'outcome', 'rpo_seconds', 'rto_seconds', 'tables', 'rows', 'files', 'chains', 'failure');
}
