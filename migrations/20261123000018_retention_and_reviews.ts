import type { Knex } from 'knex';

/*
 * Retention, legal holds, access reviews, inactive accounts.
 * - Patient deletion: requested (soft: hidden from search), then purged by the retention job after
 *   the grace period unless the patient or the practice is under legal hold. `patient_purges`
 *   keeps the fact (ids and counts, no PHI); the audit rows stay.
 * - Practice termination: an operator sets terminated_at and purge_after (30–60 days of tail);
 *   afterwards the job shreds the data keys and purges the rows; audit checkpoints, destroyed key
 *   rows and key events stay as the record of what existed.
 * - The immutability triggers (signed notes, decided plans, audit events) refuse every DELETE except
 *   inside the two SECURITY DEFINER purge functions, which check holds and state in the database.
 * - Access reviews (quarterly, per practice) with one line per account; a disabled account keeps
 *   the reason.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE practice_settings
      ADD COLUMN patient_purge_grace_days integer NOT NULL DEFAULT 30 CHECK (patient_purge_grace_days BETWEEN 1 AND 365),
      ADD COLUMN inactive_account_days integer NOT NULL DEFAULT 90 CHECK (inactive_account_days BETWEEN 30 AND 365),
      -- HIPAA keeps documentation six years: never shorter.
      ADD COLUMN audit_retention_years integer NOT NULL DEFAULT 6 CHECK (audit_retention_years BETWEEN 6 AND 100);

    ALTER TABLE practices
      ADD COLUMN legal_hold_at timestamptz,
      ADD COLUMN terminated_at timestamptz,
      ADD COLUMN purge_after timestamptz,
      ADD COLUMN purged_at timestamptz,
      ADD CONSTRAINT practices_termination CHECK ((terminated_at IS NULL) = (purge_after IS NULL));

    ALTER TABLE patients
      ADD COLUMN deletion_requested_at timestamptz,
      ADD COLUMN deletion_requested_by uuid,
      ADD COLUMN purge_after timestamptz,
      ADD COLUMN legal_hold_at timestamptz,
      ADD COLUMN legal_hold_by uuid,
      ADD CONSTRAINT patients_deletion CHECK ((deletion_requested_at IS NULL) = (purge_after IS NULL));
    CREATE INDEX patients_purge_due ON patients (practice_id, purge_after) WHERE purge_after IS NOT NULL;

    CREATE TABLE patient_purges (
      patient_id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      requested_at timestamptz NOT NULL,
      requested_by uuid,
      purged_at timestamptz NOT NULL,
      counts jsonb NOT NULL CHECK (jsonb_typeof(counts) = 'object')
    );
    SELECT enamel_tenant_table('patient_purges');
    GRANT SELECT ON patient_purges TO enamel_app;

    ALTER TABLE users ADD COLUMN deactivated_reason text CHECK (deactivated_reason IN ('manual', 'inactive', 'access_review'));

    CREATE TABLE access_reviews (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      period text NOT NULL CHECK (period ~ '^[0-9]{4}-Q[1-4]$' OR period ~ '^on-demand-[0-9]{8}T[0-9]{6}$'),
      created_at timestamptz NOT NULL,
      due_at timestamptz NOT NULL,
      created_by uuid,
      signed_off_by uuid,
      signed_off_name text CHECK (length(signed_off_name) BETWEEN 2 AND 120),
      signed_off_at timestamptz,
      overdue_alerted_at timestamptz,
      UNIQUE (practice_id, period),
      UNIQUE (practice_id, id),
      CHECK ((signed_off_at IS NULL) = (signed_off_by IS NULL) AND (signed_off_at IS NULL) = (signed_off_name IS NULL))
    );
    SELECT enamel_tenant_table('access_reviews');
    GRANT SELECT, INSERT ON access_reviews TO enamel_app;
    GRANT UPDATE (signed_off_by, signed_off_name, signed_off_at, overdue_alerted_at) ON access_reviews TO enamel_app;

    CREATE TABLE access_review_items (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      review_id uuid NOT NULL,
      user_id uuid NOT NULL,
      snapshot jsonb NOT NULL CHECK (jsonb_typeof(snapshot) = 'object'),
      flags text[] NOT NULL DEFAULT '{}' CHECK (flags <@ ARRAY['no_mfa', 'privileged', 'unused_90_days', 'break_glass']::text[]),
      decision text CHECK (decision IN ('keep', 'revoke')),
      decided_by uuid,
      decided_at timestamptz,
      UNIQUE (review_id, user_id),
      CHECK ((decision IS NULL) = (decided_at IS NULL) AND (decision IS NULL) = (decided_by IS NULL)),
      FOREIGN KEY (practice_id, review_id) REFERENCES access_reviews (practice_id, id)
    );
    SELECT enamel_tenant_table('access_review_items');
    GRANT SELECT, INSERT ON access_review_items TO enamel_app;
    GRANT UPDATE (decision, decided_by, decided_at) ON access_review_items TO enamel_app;

    -- The cleanup job removes used-up credentials: reset tokens and invitations past expiry, and
    -- patient links 90 days after theirs.
    GRANT DELETE ON password_reset_tokens, user_invitations, patient_links TO enamel_app;

    -- Whether the current transaction is inside one of the purge functions below, for this row.
    CREATE FUNCTION enamel_purge_allowed(p_practice uuid, p_patient uuid) RETURNS boolean
      LANGUAGE sql STABLE
      SET search_path = pg_catalog, public
      AS $$
        SELECT CASE
          WHEN current_setting('enamel.purge', true) = 'practice:' || p_practice::text THEN
            EXISTS (SELECT 1 FROM practices WHERE id = p_practice AND terminated_at IS NOT NULL AND legal_hold_at IS NULL)
          WHEN p_patient IS NOT NULL AND current_setting('enamel.purge', true) = 'patient:' || p_patient::text THEN
            EXISTS (SELECT 1 FROM patients pa JOIN practices pr ON pr.id = pa.practice_id
                    WHERE pa.id = p_patient AND pa.deletion_requested_at IS NOT NULL AND pa.legal_hold_at IS NULL AND pr.legal_hold_at IS NULL)
          ELSE false
        END
      $$;

    CREATE OR REPLACE FUNCTION enamel_signed_note_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF enamel_purge_allowed(OLD.practice_id, OLD.patient_id) THEN RETURN OLD; END IF;
        RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = '42501';
      END IF;
      IF OLD.status = 'signed' THEN
        RAISE EXCEPTION 'a signed clinical note cannot be changed; add an amendment' USING ERRCODE = '42501';
      END IF;
      RETURN NEW;
    END $$;

    CREATE OR REPLACE FUNCTION enamel_plan_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      plan_status text;
      plan_patient uuid;
    BEGIN
      IF TG_TABLE_NAME = 'treatment_plans' THEN
        IF TG_OP = 'DELETE' AND enamel_purge_allowed(OLD.practice_id, OLD.patient_id) THEN RETURN OLD; END IF;
        IF TG_OP = 'DELETE' OR OLD.status IN ('accepted', 'declined') THEN
          RAISE EXCEPTION 'a decided treatment plan cannot be changed' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
      END IF;
      SELECT status, patient_id INTO plan_status, plan_patient FROM treatment_plans WHERE id = COALESCE(NEW.plan_id, OLD.plan_id);
      IF TG_OP = 'DELETE' AND enamel_purge_allowed(OLD.practice_id, plan_patient) THEN RETURN OLD; END IF;
      IF plan_status IN ('accepted', 'declined') THEN
        RAISE EXCEPTION 'the items of a decided treatment plan cannot be changed' USING ERRCODE = '42501';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;

    CREATE OR REPLACE FUNCTION enamel_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events' AND enamel_purge_allowed(OLD.practice_id, NULL) THEN
        RETURN OLD;
      END IF;
      IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
      END IF;
      -- UPDATE: only sealing an unsealed row, and nothing but the seal columns.
      IF OLD.hash IS NOT NULL OR NEW.hash IS NULL
         OR (NEW.id, NEW.practice_id, NEW.occurred_at, NEW.actor_type, NEW.actor_id, NEW.action, NEW.resource_type,
             NEW.resource_id, NEW.patient_id, NEW.outcome, NEW.client_ip, NEW.request_id, NEW.reason, NEW.details)
            IS DISTINCT FROM
            (OLD.id, OLD.practice_id, OLD.occurred_at, OLD.actor_type, OLD.actor_id, OLD.action, OLD.resource_type,
             OLD.resource_id, OLD.patient_id, OLD.outcome, OLD.client_ip, OLD.request_id, OLD.reason, OLD.details) THEN
        RAISE EXCEPTION 'audit_events rows cannot be changed once written' USING ERRCODE = '42501';
      END IF;
      RETURN NEW;
    END $$;

    -- Purges one patient whose deletion was requested, whose grace has passed (p_now from the
    -- caller's clock) and who is not under a hold (patient or practice). Runs as the schema owner
    -- (the runtime role has no DELETE on these tables); forced RLS still binds it to the practice
    -- of the transaction. Returns the number of rows removed per table. Blobs are the caller's.
    CREATE FUNCTION enamel_purge_patient(p_patient uuid, p_now timestamptz) RETURNS jsonb
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
    REVOKE ALL ON FUNCTION enamel_purge_patient(uuid, timestamptz) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_purge_patient(uuid, timestamptz) TO enamel_app;

    -- Purges a terminated practice after its tail (its data keys are shredded first, by the app).
    -- Kept: the practices row (status 'terminated', purged_at), destroyed data_keys rows, key_events
    -- and audit_checkpoints — the record of what existed.
    CREATE FUNCTION enamel_purge_practice(p_practice uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pr practices%ROWTYPE;
        counts jsonb := '{}'::jsonb;
        n integer;
        t text;
      BEGIN
        SELECT * INTO pr FROM practices WHERE id = p_practice FOR UPDATE;
        IF NOT FOUND OR pr.terminated_at IS NULL OR pr.purge_after > p_now OR pr.legal_hold_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM data_keys WHERE practice_id = p_practice AND status <> 'destroyed') THEN
          RAISE EXCEPTION 'practice % is not due for purge', p_practice USING ERRCODE = '42501';
        END IF;
        PERFORM set_config('enamel.purge', 'practice:' || p_practice::text, true);
        FOREACH t IN ARRAY ARRAY[
          'plan_decisions', 'form_submissions', 'form_template_versions', 'form_templates', 'outbox_messages', 'patient_links',
          'treatment_plan_items', 'treatment_plans', 'clinical_note_amendments', 'clinical_notes', 'patient_documents',
          'break_glass_grants', 'patient_purges', 'patients', 'sms_opt_outs', 'access_review_items', 'access_reviews',
          'operator_grants', 'password_reset_tokens', 'user_invitations', 'user_locations', 'user_roles', 'user_recovery_codes',
          'users', 'roles', 'locations', 'stored_files', 'security_alerts', 'audit_verifications', 'audit_events',
          'key_rotations', 'practice_settings'
        ] LOOP
          EXECUTE format('DELETE FROM %I WHERE practice_id = $1', t) USING p_practice;
          GET DIAGNOSTICS n = ROW_COUNT;
          counts := counts || jsonb_build_object(t, n);
        END LOOP;
        UPDATE practices SET status = 'terminated', purged_at = p_now, updated_at = now() WHERE id = p_practice;
        PERFORM set_config('enamel.purge', '', true);
        RETURN counts;
      END $$;
    REVOKE ALL ON FUNCTION enamel_purge_practice(uuid, timestamptz) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_purge_practice(uuid, timestamptz) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    REVOKE DELETE ON password_reset_tokens, user_invitations, patient_links FROM enamel_app;
    DROP FUNCTION enamel_purge_practice(uuid, timestamptz);
    DROP FUNCTION enamel_purge_patient(uuid, timestamptz);
    DROP TABLE access_review_items;
    DROP TABLE access_reviews;
    ALTER TABLE users DROP COLUMN deactivated_reason;
    DROP TABLE patient_purges;
    ALTER TABLE patients DROP CONSTRAINT patients_deletion, DROP COLUMN deletion_requested_at, DROP COLUMN deletion_requested_by,
      DROP COLUMN purge_after, DROP COLUMN legal_hold_at, DROP COLUMN legal_hold_by;
    ALTER TABLE practices DROP CONSTRAINT practices_termination, DROP COLUMN legal_hold_at, DROP COLUMN terminated_at,
      DROP COLUMN purge_after, DROP COLUMN purged_at;
    ALTER TABLE practice_settings DROP COLUMN patient_purge_grace_days, DROP COLUMN inactive_account_days, DROP COLUMN audit_retention_years;

    -- The guards as migrations 3, 13 and 14 wrote them.
    CREATE OR REPLACE FUNCTION enamel_signed_note_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = '42501';
      END IF;
      IF OLD.status = 'signed' THEN
        RAISE EXCEPTION 'a signed clinical note cannot be changed; add an amendment' USING ERRCODE = '42501';
      END IF;
      RETURN NEW;
    END $$;
    CREATE OR REPLACE FUNCTION enamel_plan_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      plan_status text;
    BEGIN
      IF TG_TABLE_NAME = 'treatment_plans' THEN
        IF TG_OP = 'DELETE' OR OLD.status IN ('accepted', 'declined') THEN
          RAISE EXCEPTION 'a decided treatment plan cannot be changed' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
      END IF;
      SELECT status INTO plan_status FROM treatment_plans WHERE id = COALESCE(NEW.plan_id, OLD.plan_id);
      IF plan_status IN ('accepted', 'declined') THEN
        RAISE EXCEPTION 'the items of a decided treatment plan cannot be changed' USING ERRCODE = '42501';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;
    CREATE OR REPLACE FUNCTION enamel_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = '42501';
      END IF;
      IF OLD.hash IS NOT NULL OR NEW.hash IS NULL
         OR (NEW.id, NEW.practice_id, NEW.occurred_at, NEW.actor_type, NEW.actor_id, NEW.action, NEW.resource_type,
             NEW.resource_id, NEW.patient_id, NEW.outcome, NEW.client_ip, NEW.request_id, NEW.reason, NEW.details)
            IS DISTINCT FROM
            (OLD.id, OLD.practice_id, OLD.occurred_at, OLD.actor_type, OLD.actor_id, OLD.action, OLD.resource_type,
             OLD.resource_id, OLD.patient_id, OLD.outcome, OLD.client_ip, OLD.request_id, OLD.reason, OLD.details) THEN
        RAISE EXCEPTION 'audit_events rows cannot be changed once written' USING ERRCODE = '42501';
      END IF;
      RETURN NEW;
    END $$;
    DROP FUNCTION enamel_purge_allowed(uuid, uuid);
  `);
}
