import type { Knex } from 'knex';

/*
 * The practice's machine-readable export (issue 17, docs/EXPORT.md). An export is a background job
 * with its progress in practice_exports: which phase, how many patients done of how many, the cursor
 * to resume from after a restart, and — until the archive is built — the archive's passphrase as an
 * encrypted field (shown once to the owner, destroyed when the archive is written). Each batch's
 * FHIR resources are kept as encrypted stored files (practice_export_parts) until the archive is
 * assembled. The practice purge removes both tables with the rest of the practice's data.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE practice_exports (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      requested_by uuid NOT NULL,
      scope text NOT NULL CHECK (scope IN ('practice', 'patient')),
      patient_id uuid,
      status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
      phase text NOT NULL DEFAULT 'patients' CHECK (phase IN ('patients', 'audit', 'assemble', 'finished')),
      total integer NOT NULL DEFAULT 0 CHECK (total >= 0),
      done integer NOT NULL DEFAULT 0 CHECK (done >= 0),
      cursor text CHECK (cursor ~ '^[0-9a-f-]{1,36}$'),
      batches integer NOT NULL DEFAULT 0 CHECK (batches >= 0),
      passphrase bytea,
      archive_file_id uuid,
      archive_bytes bigint,
      error text CHECK (error ~ '^[a-z_]{1,40}$'),
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      expires_at timestamptz,
      CHECK ((scope = 'patient') = (patient_id IS NOT NULL)),
      CHECK (status <> 'done' OR (archive_file_id IS NOT NULL AND passphrase IS NULL)),
      UNIQUE (practice_id, id)
    );
    CREATE INDEX practice_exports_open ON practice_exports (status) WHERE status IN ('queued', 'running');
    SELECT enamel_tenant_table('practice_exports');
    GRANT SELECT, INSERT, UPDATE ON practice_exports TO enamel_app;

    CREATE TABLE practice_export_parts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      export_id uuid NOT NULL,
      batch integer NOT NULL CHECK (batch >= 0),
      resource_type text NOT NULL CHECK (resource_type ~ '^[A-Z][A-Za-z]{1,40}$'),
      file_id uuid NOT NULL,
      lines integer NOT NULL CHECK (lines >= 0),
      UNIQUE (practice_id, export_id, batch, resource_type),
      FOREIGN KEY (practice_id, export_id) REFERENCES practice_exports (practice_id, id) ON DELETE CASCADE
    );
    SELECT enamel_tenant_table('practice_export_parts');
    GRANT SELECT, INSERT, DELETE ON practice_export_parts TO enamel_app;

    -- Open exports across practices, ids only (the export job's work list).
    CREATE FUNCTION enamel_open_exports() RETURNS TABLE (practice_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT practice_id, id FROM practice_exports WHERE status IN ('queued', 'running') ORDER BY created_at $$;
    REVOKE ALL ON FUNCTION enamel_open_exports() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_open_exports() TO enamel_app;
    CREATE POLICY exports_owner_read ON practice_exports FOR SELECT TO CURRENT_USER USING (true);

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
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
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
    DROP FUNCTION enamel_open_exports();
    DROP TABLE practice_export_parts;
    DROP TABLE practice_exports;
  `);
}
