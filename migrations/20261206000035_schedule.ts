import type { Knex } from 'knex';

/*
 * The schedule (issue 20, first part; docs/SCHEDULE.md):
 * - operatories: the chairs of each location (practice-managed);
 * - appointment_kinds: exam, cleaning, filling, emergency… with a default length and, for a kind
 *   that sets the next recall (a cleaning), the months until it;
 * - appointments: patient, location, provider, chair, kind, start and end, status (scheduled,
 *   confirmed, arrived, in chair, completed, no-show, cancelled with a reason), a short encrypted
 *   note, linked plan items. SECURITY: the database refuses two live appointments (not cancelled,
 *   not a no-show) that overlap on one chair or one provider — exclusion constraints on the time
 *   range (btree_gist for the uuid equality) — whatever the application checks first.
 * - The patient and practice purges learn the new tables (the definitions of migration 32 plus them).
 * - schedule.read / schedule.manage for the default roles still under their default key.
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

const GRANTS: [string, string][] = [
  ['front_desk', 'schedule.read'], ['front_desk', 'schedule.manage'],
  ['office_manager', 'schedule.read'], ['office_manager', 'schedule.manage'],
  ['treatment_coordinator', 'schedule.read'], ['billing', 'schedule.read'],
];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE EXTENSION IF NOT EXISTS btree_gist;

    CREATE TABLE operatories (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      location_id uuid NOT NULL,
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
      position integer NOT NULL DEFAULT 0 CHECK (position BETWEEN 0 AND 999),
      archived_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, location_id, name),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, location_id) REFERENCES locations (practice_id, id)
    );
    SELECT enamel_tenant_table('operatories');
    GRANT SELECT, INSERT ON operatories TO enamel_app;
    GRANT UPDATE (name, position, archived_at) ON operatories TO enamel_app;

    CREATE TABLE appointment_kinds (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      key text CHECK (key ~ '^[a-z_]{1,40}$'),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
      default_minutes integer NOT NULL CHECK (default_minutes BETWEEN 5 AND 480),
      recall_months integer CHECK (recall_months BETWEEN 1 AND 36),
      archived_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, name),
      UNIQUE (practice_id, key),
      UNIQUE (practice_id, id)
    );
    SELECT enamel_tenant_table('appointment_kinds');
    GRANT SELECT, INSERT ON appointment_kinds TO enamel_app;
    GRANT UPDATE (name, default_minutes, recall_months, archived_at) ON appointment_kinds TO enamel_app;

    CREATE TABLE appointments (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      patient_id uuid NOT NULL,
      location_id uuid NOT NULL,
      provider_id uuid NOT NULL,
      chair_id uuid NOT NULL,
      kind_id uuid NOT NULL,
      starts_at timestamptz NOT NULL,
      ends_at timestamptz NOT NULL,
      status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'confirmed', 'arrived', 'in_chair', 'completed', 'no_show', 'cancelled')),
      cancel_reason text CHECK (cancel_reason IN ('patient_request', 'patient_no_answer', 'practice', 'illness', 'weather', 'rescheduled', 'other')),
      note bytea,
      plan_item_ids uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(plan_item_ids) <= 20),
      created_by uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (ends_at > starts_at AND ends_at <= starts_at + interval '12 hours'),
      CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id),
      FOREIGN KEY (practice_id, location_id) REFERENCES locations (practice_id, id),
      FOREIGN KEY (practice_id, chair_id) REFERENCES operatories (practice_id, id),
      FOREIGN KEY (practice_id, kind_id) REFERENCES appointment_kinds (practice_id, id),
      CONSTRAINT appointments_chair_free EXCLUDE USING gist (practice_id WITH =, chair_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status NOT IN ('cancelled', 'no_show')),
      CONSTRAINT appointments_provider_free EXCLUDE USING gist (practice_id WITH =, provider_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status NOT IN ('cancelled', 'no_show'))
    );
    CREATE INDEX appointments_day ON appointments (practice_id, location_id, starts_at);
    CREATE INDEX appointments_patient ON appointments (practice_id, patient_id, starts_at);
    SELECT enamel_tenant_table('appointments');
    GRANT SELECT, INSERT ON appointments TO enamel_app;
    GRANT UPDATE (provider_id, chair_id, kind_id, starts_at, ends_at, status, cancel_reason, note, plan_item_ids, updated_at) ON appointments TO enamel_app;
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
        DELETE FROM appointments WHERE patient_id = p_patient;
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('appointments', n);
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
          'appointments', 'break_glass_grants', 'patient_purges', 'disclosures', 'record_amendments', 'patient_restrictions', 'patient_requests', 'patients', 'sms_opt_outs', 'access_review_items', 'access_reviews',
          'operator_grants', 'password_reset_tokens', 'user_invitations', 'user_locations', 'user_roles', 'user_recovery_codes',
          'practice_export_parts', 'practice_exports', 'users', 'roles', 'operatories', 'appointment_kinds', 'locations', 'stored_files', 'security_alerts', 'key_rotations', 'practice_settings'
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
  for (const [role, permission] of GRANTS) {
    await eachPractice(knex, `UPDATE roles SET permissions = array_append(permissions, '${permission}') WHERE key = '${role}' AND NOT ('${permission}' = ANY (permissions))`);
  }
}

export async function down(knex: Knex): Promise<void> {
  await eachPractice(knex, `UPDATE roles SET permissions = array_remove(array_remove(permissions, 'schedule.read'), 'schedule.manage')`);
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
    DROP TABLE appointments;
    DROP TABLE appointment_kinds;
    DROP TABLE operatories;
  `);
}
