import type { Knex } from 'knex';

/*
 * Restrictions and confidential communications (issue 18, §164.522): a patient's request the
 * practice agreed to or refused (the refusal's reason kept), shown on the chart while it holds; a
 * confidential-communication choice ("email only", "no texts", …) is honoured by every message to
 * the patient — a message against it is recorded as suppressed and never sent. What the patient
 * asked and the reason for a refusal are encrypted. The purges learn the table in migration 32.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patient_restrictions (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      patient_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('restriction', 'confidential_communication')),
      decision text NOT NULL CHECK (decision IN ('agreed', 'refused')),
      channel text CHECK (channel IN ('email_only', 'text_only', 'no_email', 'no_text')),
      description bytea NOT NULL,
      refusal_reason bytea,
      decided_by uuid NOT NULL,
      decided_at timestamptz NOT NULL,
      ended_at timestamptz,
      ended_by uuid,
      CHECK ((kind = 'confidential_communication') = (channel IS NOT NULL)),
      CHECK ((decision = 'refused') = (refusal_reason IS NOT NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX patient_restrictions_patient ON patient_restrictions (practice_id, patient_id) WHERE ended_at IS NULL;
    SELECT enamel_tenant_table('patient_restrictions');
    GRANT SELECT, INSERT ON patient_restrictions TO enamel_app;
    GRANT UPDATE (ended_at, ended_by) ON patient_restrictions TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE patient_restrictions;
  `);
}
