import type { Knex } from 'knex';

/*
 * The patient's own side of their rights (issue 18, last part), through their link:
 * - Two more link tasks: "Download your records" (a single-patient export the patient starts after
 *   the date-of-birth check, §164.524) and "Ask for a correction" (an amendment request, §164.526).
 * - practice_exports.requested_via: an export is asked for by staff (requested_by is the user) or
 *   by the patient's link (requested_by is the link; only a single-patient export).
 * - disclosures.source 'patient_link': the copy the patient downloaded (purpose to_patient, which
 *   the accounting may exclude), recorded_by the link.
 * - practice_settings.access_report_names: whether "Who saw my record" names the staff member or
 *   shows only their role (the practice chooses; default names).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE patient_links DROP CONSTRAINT patient_links_tasks;
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_tasks CHECK (
      cardinality(tasks) BETWEEN 1 AND 6 AND tasks <@ ARRAY['plan_review', 'intake_forms', 'uploads', 'access_report', 'records_download', 'amendment_request']::text[]);

    ALTER TABLE practice_exports ADD COLUMN requested_via text NOT NULL DEFAULT 'staff' CHECK (requested_via IN ('staff', 'patient_link'));
    ALTER TABLE practice_exports ADD CONSTRAINT practice_exports_link_is_patient CHECK (requested_via = 'staff' OR scope = 'patient');
    CREATE INDEX practice_exports_requester ON practice_exports (practice_id, requested_by, created_at DESC);

    ALTER TABLE disclosures DROP CONSTRAINT disclosures_source_check;
    ALTER TABLE disclosures ADD CONSTRAINT disclosures_source_check CHECK (source IN ('manual', 'export', 'patient_link'));

    ALTER TABLE practice_settings ADD COLUMN access_report_names boolean NOT NULL DEFAULT true;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DO $$
    DECLARE p uuid;
    BEGIN
      FOR p IN SELECT id FROM practices LOOP
        PERFORM set_config('app.practice_id', p::text, true);
        UPDATE patient_links SET tasks = array_remove(array_remove(tasks, 'records_download'), 'amendment_request')
          WHERE tasks && ARRAY['records_download', 'amendment_request'] AND cardinality(array_remove(array_remove(tasks, 'records_download'), 'amendment_request')) > 0;
        UPDATE patient_links SET revoked_at = coalesce(revoked_at, now()), tasks = ARRAY['uploads']
          WHERE tasks <@ ARRAY['records_download', 'amendment_request'];
        DELETE FROM disclosures WHERE source = 'patient_link';
      END LOOP;
      PERFORM set_config('app.practice_id', '', true);
    END $$;
    ALTER TABLE patient_links DROP CONSTRAINT patient_links_tasks;
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_tasks CHECK (
      cardinality(tasks) BETWEEN 1 AND 4 AND tasks <@ ARRAY['plan_review', 'intake_forms', 'uploads', 'access_report']::text[]);
    ALTER TABLE practice_settings DROP COLUMN access_report_names;
    ALTER TABLE disclosures DROP CONSTRAINT disclosures_source_check;
    ALTER TABLE disclosures ADD CONSTRAINT disclosures_source_check CHECK (source IN ('manual', 'export'));
    DROP INDEX practice_exports_requester;
    ALTER TABLE practice_exports DROP CONSTRAINT practice_exports_link_is_patient;
    ALTER TABLE practice_exports DROP COLUMN requested_via;
  `);
}
