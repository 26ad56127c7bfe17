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
 * - The patient and practice purges remove both tables' rows with the rest.
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

    -- The purges remove the new tables' rows with the patient (and with the practice).
    CREATE OR REPLACE FUNCTION enamel_purge_patient(p_patient uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pa patients%ROWTYPE;
        counts jsonb := '{}'::jsonb;
        n integer;
      BEGIN
        SELECT * INTO pa FROM patients WHERE id = p_patient FOR UPDATE;
        IF NOT FOUND OR pa.deletion_requested_at IS NULL OR pa.purge_after > p_now OR pa.legal_hold_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM practices WHERE id = pa.practice_id AND legal_hold_at IS NOT NULL) THEN
          RAISE EXCEPTION 'patient % is not due for purge', p_patient USING ERRCODE = '42501';
        END IF;
        PERFORM set_config('enamel.purge', 'patient:' || p_patient::text, true);
        DELETE FROM plan_decisions WHERE plan_id IN (SELECT id FROM treatment_plans WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('plan_decisions', n);
        DELETE FROM form_submissions WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('form_submissions', n);
        DELETE FROM outbox_messages WHERE link_id IN (SELECT id FROM patient_links WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('outbox_messages', n);
        DELETE FROM patient_links WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_links', n);
        DELETE FROM treatment_plan_items WHERE plan_id IN (SELECT id FROM treatment_plans WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('treatment_plan_items', n);
        DELETE FROM treatment_plans WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('treatment_plans', n);
        DELETE FROM clinical_note_amendments WHERE note_id IN (SELECT id FROM clinical_notes WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('clinical_note_amendments', n);
        DELETE FROM clinical_notes WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('clinical_notes', n);
        DELETE FROM patient_documents WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_documents', n);
        DELETE FROM break_glass_grants WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('break_glass_grants', n);
        DELETE FROM disclosures WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('disclosures', n);
        DELETE FROM patient_requests WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_requests', n);
        UPDATE patients SET merged_into_id = NULL WHERE merged_into_id = p_patient;
        DELETE FROM patients WHERE id = p_patient;
        INSERT INTO patient_purges (patient_id, practice_id, requested_at, requested_by, purged_at, counts)
          VALUES (p_patient, pa.practice_id, pa.deletion_requested_at, pa.deletion_requested_by, p_now, counts);
        PERFORM set_config('enamel.purge', '', true);
        RETURN counts;
      END $$;
    CREATE OR REPLACE FUNCTION enamel_purge_practice(p_practice uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pr practices%ROWTYPE;
        counts jsonb := '{}'::jsonb;
        n integer;
        t text;
        keep_years integer;
      BEGIN
        SELECT * INTO pr FROM practices WHERE id = p_practice AND kind = 'practice' FOR UPDATE;
        IF NOT FOUND OR pr.terminated_at IS NULL OR pr.purge_after > p_now OR pr.legal_hold_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM data_keys WHERE practice_id = p_practice AND status <> 'destroyed') THEN
          RAISE EXCEPTION 'practice % is not due for purge', p_practice USING ERRCODE = '42501';
        END IF;
        SELECT greatest(6, coalesce(audit_retention_years, 6)) INTO keep_years FROM practice_settings WHERE practice_id = p_practice;
        keep_years := coalesce(keep_years, 6);
        PERFORM set_config('enamel.purge', 'practice:' || p_practice::text, true);
        UPDATE practice_settings SET security_contact_user_id = NULL WHERE practice_id = p_practice;
        FOREACH t IN ARRAY ARRAY[
          'plan_decisions', 'form_submissions', 'form_template_versions', 'form_templates', 'outbox_messages', 'patient_links',
          'treatment_plan_items', 'treatment_plans', 'clinical_note_amendments', 'clinical_notes', 'patient_documents',
          'break_glass_grants', 'patient_purges', 'disclosures', 'patient_requests', 'patients', 'sms_opt_outs', 'access_review_items', 'access_reviews',
          'operator_grants', 'password_reset_tokens', 'user_invitations', 'user_locations', 'user_roles', 'user_recovery_codes',
          'practice_export_parts', 'practice_exports', 'users', 'roles', 'locations', 'stored_files', 'security_alerts', 'key_rotations', 'practice_settings'
        ] LOOP
          EXECUTE format('DELETE FROM %I WHERE practice_id = $1', t) USING p_practice;
          GET DIAGNOSTICS n = ROW_COUNT;
          counts := counts || jsonb_build_object(t, n);
        END LOOP;
        UPDATE practices SET status = 'terminated', purged_at = p_now,
          audit_purge_after = pr.terminated_at + make_interval(years => keep_years), updated_at = now()
          WHERE id = p_practice;
        PERFORM set_config('enamel.purge', '', true);
        RETURN counts;
      END $$;
  `);
  await eachPractice(knex, `UPDATE roles SET permissions = array_append(permissions, 'rights.manage')
    WHERE key = 'office_manager' AND NOT ('rights.manage' = ANY (permissions))`);
}

export async function down(knex: Knex): Promise<void> {
  await eachPractice(knex, `UPDATE roles SET permissions = array_remove(permissions, 'rights.manage')`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION enamel_purge_patient(p_patient uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pa patients%ROWTYPE;
        counts jsonb := '{}'::jsonb;
        n integer;
      BEGIN
        SELECT * INTO pa FROM patients WHERE id = p_patient FOR UPDATE;
        IF NOT FOUND OR pa.deletion_requested_at IS NULL OR pa.purge_after > p_now OR pa.legal_hold_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM practices WHERE id = pa.practice_id AND legal_hold_at IS NOT NULL) THEN
          RAISE EXCEPTION 'patient % is not due for purge', p_patient USING ERRCODE = '42501';
        END IF;
        PERFORM set_config('enamel.purge', 'patient:' || p_patient::text, true);
        DELETE FROM plan_decisions WHERE plan_id IN (SELECT id FROM treatment_plans WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('plan_decisions', n);
        DELETE FROM form_submissions WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('form_submissions', n);
        DELETE FROM outbox_messages WHERE link_id IN (SELECT id FROM patient_links WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('outbox_messages', n);
        DELETE FROM patient_links WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_links', n);
        DELETE FROM treatment_plan_items WHERE plan_id IN (SELECT id FROM treatment_plans WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('treatment_plan_items', n);
        DELETE FROM treatment_plans WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('treatment_plans', n);
        DELETE FROM clinical_note_amendments WHERE note_id IN (SELECT id FROM clinical_notes WHERE patient_id = p_patient);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('clinical_note_amendments', n);
        DELETE FROM clinical_notes WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('clinical_notes', n);
        DELETE FROM patient_documents WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_documents', n);
        DELETE FROM break_glass_grants WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('break_glass_grants', n);
        UPDATE patients SET merged_into_id = NULL WHERE merged_into_id = p_patient;
        DELETE FROM patients WHERE id = p_patient;
        INSERT INTO patient_purges (patient_id, practice_id, requested_at, requested_by, purged_at, counts)
          VALUES (p_patient, pa.practice_id, pa.deletion_requested_at, pa.deletion_requested_by, p_now, counts);
        PERFORM set_config('enamel.purge', '', true);
        RETURN counts;
      END $$;
    CREATE OR REPLACE FUNCTION enamel_purge_practice(p_practice uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pr practices%ROWTYPE;
        counts jsonb := '{}'::jsonb;
        n integer;
        t text;
        keep_years integer;
      BEGIN
        SELECT * INTO pr FROM practices WHERE id = p_practice AND kind = 'practice' FOR UPDATE;
        IF NOT FOUND OR pr.terminated_at IS NULL OR pr.purge_after > p_now OR pr.legal_hold_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM data_keys WHERE practice_id = p_practice AND status <> 'destroyed') THEN
          RAISE EXCEPTION 'practice % is not due for purge', p_practice USING ERRCODE = '42501';
        END IF;
        SELECT greatest(6, coalesce(audit_retention_years, 6)) INTO keep_years FROM practice_settings WHERE practice_id = p_practice;
        keep_years := coalesce(keep_years, 6);
        PERFORM set_config('enamel.purge', 'practice:' || p_practice::text, true);
        UPDATE practice_settings SET security_contact_user_id = NULL WHERE practice_id = p_practice;
        FOREACH t IN ARRAY ARRAY[
          'plan_decisions', 'form_submissions', 'form_template_versions', 'form_templates', 'outbox_messages', 'patient_links',
          'treatment_plan_items', 'treatment_plans', 'clinical_note_amendments', 'clinical_notes', 'patient_documents',
          'break_glass_grants', 'patient_purges', 'patients', 'sms_opt_outs', 'access_review_items', 'access_reviews',
          'operator_grants', 'password_reset_tokens', 'user_invitations', 'user_locations', 'user_roles', 'user_recovery_codes',
          'practice_export_parts', 'practice_exports', 'users', 'roles', 'locations', 'stored_files', 'security_alerts', 'key_rotations', 'practice_settings'
        ] LOOP
          EXECUTE format('DELETE FROM %I WHERE practice_id = $1', t) USING p_practice;
          GET DIAGNOSTICS n = ROW_COUNT;
          counts := counts || jsonb_build_object(t, n);
        END LOOP;
        UPDATE practices SET status = 'terminated', purged_at = p_now,
          audit_purge_after = pr.terminated_at + make_interval(years => keep_years), updated_at = now()
          WHERE id = p_practice;
        PERFORM set_config('enamel.purge', '', true);
        RETURN counts;
      END $$;
    DROP TABLE disclosures;
    DROP TABLE patient_requests;
  `);
}
