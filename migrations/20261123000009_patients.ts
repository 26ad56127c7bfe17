import type { Knex } from 'knex';

/*
 * Patients: every demographic field is a field envelope (bytea, declared in
 * src/queries/patients.queries.ts); names, date of birth, phone and email also carry a 64-bit blind
 * index for exact-match search. Plain columns hold ids, the location, the status and times only.
 *
 * Break-glass grants: a user lacking access to one patient opens that chart for a limited time,
 * after step-up, with a reason code and a written justification (encrypted: it may describe the
 * patient). Listed for review until an owner marks each reviewed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patients (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      location_id uuid NOT NULL,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'deceased', 'merged')),
      merged_into_id uuid,
      given_name bytea NOT NULL,
      given_name_bidx bytea,
      family_name bytea NOT NULL,
      family_name_bidx bytea,
      date_of_birth bytea NOT NULL,
      date_of_birth_bidx bytea,
      sex bytea,
      phone bytea,
      phone_bidx bytea,
      email bytea,
      email_bidx bytea,
      address bytea,
      preferred_contact bytea,
      insurance bytea,
      emergency_contact bytea,
      created_by uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, location_id) REFERENCES locations (practice_id, id),
      FOREIGN KEY (practice_id, merged_into_id) REFERENCES patients (practice_id, id),
      CHECK ((status = 'merged') = (merged_into_id IS NOT NULL))
    );
    CREATE INDEX patients_family_name ON patients (practice_id, family_name_bidx);
    CREATE INDEX patients_dob ON patients (practice_id, date_of_birth_bidx);
    CREATE INDEX patients_phone ON patients (practice_id, phone_bidx);
    CREATE INDEX patients_email ON patients (practice_id, email_bidx);
    SELECT enamel_tenant_table('patients');
    GRANT SELECT, INSERT, UPDATE ON patients TO enamel_app;

    CREATE TABLE break_glass_grants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      reason_code text NOT NULL CHECK (reason_code IN ('emergency', 'continuity_of_care', 'patient_request', 'other')),
      justification bytea NOT NULL,
      granted_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL CHECK (expires_at > granted_at),
      reviewed_by uuid,
      reviewed_at timestamptz,
      CHECK ((reviewed_by IS NULL) = (reviewed_at IS NULL)),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX break_glass_active ON break_glass_grants (practice_id, user_id, patient_id, expires_at);
    CREATE INDEX break_glass_unreviewed ON break_glass_grants (practice_id, granted_at) WHERE reviewed_at IS NULL;
    SELECT enamel_tenant_table('break_glass_grants');
    GRANT SELECT, INSERT ON break_glass_grants TO enamel_app;
    GRANT UPDATE (reviewed_by, reviewed_at) ON break_glass_grants TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE break_glass_grants; DROP TABLE patients;');
}
