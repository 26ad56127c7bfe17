import type { Knex } from 'knex';

/** job_runs: the scheduler's history (not a tenant table: job names, times, outcomes, counts — no practice data). */
export function jobRuns(knex: Knex, limit: number) {
  return knex('job_runs')
    .orderBy('started_at', 'desc')
    .limit(limit)
    .select<{ id: string; job: string; trigger: string; started_at: Date; finished_at: Date | null; outcome: string | null; counts: Record<string, number> | null; error_type: string | null }[]>('id', 'job', 'trigger', 'started_at', 'finished_at', 'outcome', 'counts', 'error_type');
}

/** SECURITY/NOTE: a transaction-scoped advisory lock per job name: two replicas never run one job at once. */
export async function tryJobLock(trx: Knex.Transaction, job: string): Promise<boolean> {
  const lock = await trx.raw<{ rows: { ok: boolean }[] }>("SELECT pg_try_advisory_xact_lock(hashtextextended('enamel-job:' || ?, 0)) AS ok", [job]);
  return Boolean(lock.rows[0]?.ok);
}

export async function startJobRun(knex: Knex, job: string, trigger: string): Promise<string> {
  const [run] = await knex('job_runs').insert({ job, trigger }).returning<{ id: string }[]>('id');
  return run!.id;
}

export async function finishJobRun(knex: Knex, id: string, outcome: { outcome: 'ok'; counts: Record<string, number> } | { outcome: 'failed'; errorType: string }): Promise<void> {
  await knex('job_runs').where({ id }).update(outcome.outcome === 'ok' ? { outcome: 'ok', finished_at: knex.fn.now(), counts: outcome.counts } : { outcome: 'failed', finished_at: knex.fn.now(), error_type: outcome.errorType });
}
