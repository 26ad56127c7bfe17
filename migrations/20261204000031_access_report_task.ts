import type { Knex } from 'knex';

/*
 * A patient link may carry "Who saw my record" (issue 18): after the date-of-birth check the patient
 * reads the accesses to their record from the audit log. The task joins the allowed list.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE patient_links DROP CONSTRAINT patient_links_tasks;
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_tasks CHECK (
      cardinality(tasks) BETWEEN 1 AND 4 AND tasks <@ ARRAY['plan_review', 'intake_forms', 'uploads', 'access_report']::text[]);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DO $$
    DECLARE p uuid;
    BEGIN
      FOR p IN SELECT id FROM practices LOOP
        PERFORM set_config('app.practice_id', p::text, true);
        UPDATE patient_links SET tasks = array_remove(tasks, 'access_report') WHERE 'access_report' = ANY (tasks) AND cardinality(tasks) > 1;
        UPDATE patient_links SET revoked_at = coalesce(revoked_at, now()), tasks = ARRAY['uploads'] WHERE tasks = ARRAY['access_report'];
      END LOOP;
      PERFORM set_config('app.practice_id', '', true);
    END $$;
    ALTER TABLE patient_links DROP CONSTRAINT patient_links_tasks;
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_tasks CHECK (
      cardinality(tasks) BETWEEN 1 AND 3 AND tasks <@ ARRAY['plan_review', 'intake_forms', 'uploads']::text[]);
  `);
}
