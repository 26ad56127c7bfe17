import type { Knex } from 'knex';

/*
 * Patient links: a random code (256 bits) given to a patient for one purpose; only its SHA-256 is
 * stored, so nothing in the database gives the code back. The patient proves their date of birth;
 * five wrong answers lock the link for good. Links expire and can be revoked.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patient_links (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      purpose text NOT NULL CHECK (purpose IN ('plan_review', 'intake_forms', 'uploads')),
      plan_id uuid,
      code_hash text NOT NULL UNIQUE CHECK (code_hash ~ '^[0-9a-f]{64}$'),
      created_by uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz,
      failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
      locked_at timestamptz,
      verified_at timestamptz,
      CHECK ((purpose = 'plan_review') = (plan_id IS NOT NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id),
      FOREIGN KEY (practice_id, plan_id) REFERENCES treatment_plans (practice_id, id)
    );
    CREATE INDEX patient_links_patient ON patient_links (practice_id, patient_id, created_at DESC);
    SELECT enamel_tenant_table('patient_links');
    GRANT SELECT, INSERT ON patient_links TO enamel_app;
    GRANT UPDATE (revoked_at, failed_attempts, locked_at, verified_at) ON patient_links TO enamel_app;

    -- A link's practice from the hash of its code, and nothing else (the URL names no practice).
    -- The function runs as the schema owner, which forced RLS would blind: a read policy for it alone.
    CREATE POLICY link_owner_read ON patient_links FOR SELECT TO CURRENT_USER USING (true);
    CREATE FUNCTION enamel_link_practice(p_code_hash text) RETURNS uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT practice_id FROM patient_links WHERE code_hash = p_code_hash $$;
    REVOKE ALL ON FUNCTION enamel_link_practice(text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_link_practice(text) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION enamel_link_practice(text); DROP TABLE patient_links;');
}
