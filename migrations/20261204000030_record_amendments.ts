import type { Knex } from 'knex';

/*
 * Amendments a patient asks for (issue 18, §164.526): on their demographics, a clinical note or a
 * treatment plan. The request (what the patient wants changed) is kept; the practice accepts it —
 * the amendment is appended beside the original, which never changes — or denies it with a reason,
 * and the patient's statement of disagreement is added when it arrives. Each is shown wherever that
 * part of the record is shown or exported. The text is encrypted; the purges learn the table in migration
 * 32.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE record_amendments (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      patient_id uuid NOT NULL,
      request_id uuid,
      target_type text NOT NULL CHECK (target_type IN ('demographics', 'clinical_note', 'treatment_plan')),
      target_id uuid NOT NULL,
      requested_change bytea NOT NULL,
      requested_at timestamptz NOT NULL,
      decision text NOT NULL DEFAULT 'pending' CHECK (decision IN ('pending', 'accepted', 'denied')),
      response bytea,
      decided_by uuid,
      decided_at timestamptz,
      disagreement bytea,
      disagreement_at timestamptz,
      CHECK ((decision = 'pending') = (decided_at IS NULL)),
      CHECK ((decision = 'pending') = (response IS NULL)),
      CHECK (disagreement IS NULL OR decision = 'denied'),
      CHECK ((disagreement IS NULL) = (disagreement_at IS NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX record_amendments_patient ON record_amendments (practice_id, patient_id, requested_at);
    SELECT enamel_tenant_table('record_amendments');
    GRANT SELECT, INSERT ON record_amendments TO enamel_app;
    GRANT UPDATE (decision, response, decided_by, decided_at, disagreement, disagreement_at) ON record_amendments TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE record_amendments;
  `);
}
