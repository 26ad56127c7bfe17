import type { Knex } from 'knex';

/*
 * Patients' rights under the Privacy Rule (issue 18, first part):
 * - patient_requests: the register of requests — access (§164.524, 30 days), amendment
 *   (§164.526, 60 days), an accounting of disclosures (§164.528, 60 days), a restriction or
 *   confidential communications (§164.522, 30 days by the practice's policy) — received by staff or
 *   through a patient link, with its due date, at most one 30-day extension (its reason and the day
 *   the patient was told), the outcome, and who handled it. What the patient asked is encrypted.
 * - disclosures: what left the practice about a patient, to whom, why and when (§164.528): recorded
 *   from the chart, or automatically by an export. Recipient and description are encrypted.
 * - The patient and practice purges learn both tables in migration 32.
 * - rights.manage for the office manager roles still under their default key (owners hold every
 *   permission), as a new practice gets it.
 */
async function eachPractice(knex: Knex, sql: string): Promise<void> {
  await knex.raw(`
    DO $$
    DECLARE p uuid;
    BEGIN
      FOR p IN SELECT id FROM practices LOOP
        PERFORM set_config('app.practice_id', p::text, true);
        EXECUTE $sql$ ${sql} $sql$;
      END LOOP;
      PERFORM set_config('app.practice_id', '', true);
    END $$;
  `);
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patient_requests (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      patient_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('access', 'amendment', 'accounting', 'restriction', 'confidential_communication')),
      received_via text NOT NULL CHECK (received_via IN ('phone', 'paper', 'in_person', 'email', 'patient_link')),
      received_at timestamptz NOT NULL,
      due_at timestamptz NOT NULL,
      details bytea,
      extended_at timestamptz,
      extension_reason bytea,
      extension_notice_at timestamptz,
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'fulfilled', 'denied', 'withdrawn')),
      outcome_note bytea,
      fee_cents integer CHECK (fee_cents >= 0),
      recorded_by uuid NOT NULL,
      handled_by uuid,
      closed_at timestamptz,
      overdue_alerted_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((extended_at IS NULL) = (extension_reason IS NULL)),
      CHECK ((status = 'open') = (closed_at IS NULL)),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX patient_requests_open ON patient_requests (practice_id, due_at) WHERE status = 'open';
    CREATE INDEX patient_requests_patient ON patient_requests (practice_id, patient_id, received_at DESC);
    SELECT enamel_tenant_table('patient_requests');
    GRANT SELECT, INSERT ON patient_requests TO enamel_app;
    GRANT UPDATE (due_at, extended_at, extension_reason, extension_notice_at, status, outcome_note, fee_cents, handled_by, closed_at, overdue_alerted_at) ON patient_requests TO enamel_app;

    CREATE TABLE disclosures (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      patient_id uuid NOT NULL,
      disclosed_at timestamptz NOT NULL,
      purpose text NOT NULL CHECK (purpose IN ('treatment', 'payment', 'operations', 'to_patient', 'authorized', 'public_health', 'court_order', 'law_enforcement', 'health_oversight', 'research', 'records_export', 'other')),
      recipient bytea NOT NULL,
      description bytea NOT NULL,
      source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'export')),
      export_id uuid,
      recorded_by uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX disclosures_patient ON disclosures (practice_id, patient_id, disclosed_at DESC);
    SELECT enamel_tenant_table('disclosures');
    GRANT SELECT, INSERT ON disclosures TO enamel_app;
  `);
  await eachPractice(knex, `UPDATE roles SET permissions = array_append(permissions, 'rights.manage')
    WHERE key = 'office_manager' AND NOT ('rights.manage' = ANY (permissions))`);
}

export async function down(knex: Knex): Promise<void> {
  await eachPractice(knex, `UPDATE roles SET permissions = array_remove(permissions, 'rights.manage')`);
  await knex.raw(`
    DROP TABLE disclosures;
    DROP TABLE patient_requests;
  `);
}
