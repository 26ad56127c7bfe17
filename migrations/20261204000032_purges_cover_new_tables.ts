import type { Knex } from 'knex';

/*
 * The patient and practice purges (migrations 18 and 19) learn the tables added since: the export's
 * parts and rows (27), patients' requests and disclosures (28), restrictions (29) and amendments (30)
 * go with the patient, or with the practice. One redefinition for all of them.
 */
export async function up(knex: Knex): Promise<void> {
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
        DELETE FROM disclosures WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('disclosures', n);
        DELETE FROM record_amendments WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('record_amendments', n);
        DELETE FROM patient_restrictions WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('patient_restrictions', n);
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
          'break_glass_grants', 'patient_purges', 'disclosures', 'record_amendments', 'patient_restrictions', 'patient_requests', 'patients', 'sms_opt_outs', 'access_review_items', 'access_reviews',
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
}

export async function down(knex: Knex): Promise<void> {
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
          'users', 'roles', 'locations', 'stored_files', 'security_alerts', 'key_rotations', 'practice_settings'
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
}
