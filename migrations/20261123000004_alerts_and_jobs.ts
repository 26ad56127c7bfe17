import type { Knex } from 'knex';

/*
 * Security alerts (one table, one call: src/alerts/alerts.ts) and the scheduler's run history.
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE security_alerts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{1,48}$'),
      severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
      details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
      created_at timestamptz NOT NULL DEFAULT now(),
      acknowledged_by uuid,
      acknowledged_at timestamptz,
      CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
    );
    CREATE INDEX security_alerts_open ON security_alerts (practice_id, created_at) WHERE acknowledged_at IS NULL;
    SELECT enamel_tenant_table('security_alerts');
    GRANT SELECT, INSERT ON security_alerts TO enamel_app;
    GRANT UPDATE (acknowledged_by, acknowledged_at) ON security_alerts TO enamel_app;

    -- Scheduler history: system-wide, ids and counts only (never PHI).
    CREATE TABLE job_runs (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      job text NOT NULL CHECK (job ~ '^[a-z][a-z0-9-]{1,48}$'),
      trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
      started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      finished_at timestamptz,
      outcome text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
      counts jsonb NOT NULL DEFAULT '{}'::jsonb,
      error_type text CHECK (error_type ~ '^[A-Za-z][A-Za-z0-9_]{0,63}$')
    );
    CREATE INDEX job_runs_job ON job_runs (job, started_at DESC);
    GRANT SELECT, INSERT, UPDATE ON job_runs TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE job_runs; DROP TABLE security_alerts;');
}
