import type { Knex } from 'knex';

/** job_runs: the scheduler's history (not a tenant table: job names, times, outcomes, counts — no practice data). */
export function jobRuns(knex: Knex, limit: number) {
  return knex('job_runs')
    .orderBy('started_at', 'desc')
    .limit(limit)
    .select<{ id: string; job: string; trigger: string; started_at: Date; finished_at: Date | null; outcome: string | null; counts: Record<string, number> | null; error_type: string | null }[]>('id', 'job', 'trigger', 'started_at', 'finished_at', 'outcome', 'counts', 'error_type');
}
