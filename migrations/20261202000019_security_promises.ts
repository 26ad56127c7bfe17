import type { Knex } from 'knex';

/*
 * Security promises kept (issue 14). Schema only; the rows it needs come in migration 20.
 * - The installation as a tenant of its own (practices.kind = 'installation'): operator sign-ins,
 *   operator accounts and installation alerts are audited and raised there, so the same hash chain,
 *   sealer, checkpoints and verifier cover them. It has no slug page, no directory entry, and no
 *   per-practice jobs (enamel_practice_ids() leaves it out); enamel_audit_chain_ids() lists it.
 * - Alerts: who was told and when (notified_at), an acknowledgement note (encrypted: staff type it),
 *   the practice's security contact and its export-volume threshold. MFA is on by default.
 * - One throttle table for every credential step (password, second factor, operator, date of birth).
 * - Key rotation: a job can fail with a reason; the immutable tables accept a re-encryption — and
 *   nothing else — while a rotation of that kind is running and the transaction says so.
 * - A terminated practice's audit events stay after its purge until its audit retention has passed
 *   (counted from termination); then a purge function removes them, only after a signed checkpoint
 *   of the final chain head.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE practices
      ADD COLUMN kind text NOT NULL DEFAULT 'practice' CHECK (kind IN ('practice', 'installation')),
      ADD COLUMN audit_purge_after timestamptz,
      ADD COLUMN audit_purged_at timestamptz;
    CREATE UNIQUE INDEX practices_one_installation ON practices (kind) WHERE kind = 'installation';

    CREATE OR REPLACE FUNCTION enamel_practice_id_by_slug(p_slug text) RETURNS uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices WHERE slug = p_slug AND status = 'active' AND kind = 'practice' $$;
    CREATE OR REPLACE FUNCTION enamel_practice_ids() RETURNS SETOF uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices WHERE kind = 'practice' ORDER BY id $$;
    CREATE OR REPLACE FUNCTION enamel_practice_directory() RETURNS TABLE (id uuid, slug text, name text, status text, created_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id, slug, name, status, created_at FROM practices WHERE kind = 'practice' ORDER BY name $$;
    -- Every audit chain that still exists: the installation's and every practice's (terminated ones
    -- too, until their audit retention has passed).
    CREATE FUNCTION enamel_audit_chain_ids() RETURNS SETOF uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices WHERE audit_purged_at IS NULL ORDER BY kind = 'installation' DESC, id $$;
    REVOKE ALL ON FUNCTION enamel_audit_chain_ids() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_audit_chain_ids() TO enamel_app;

    -- Alerts: told whom and when; acknowledged with a note (an encrypted field: people type it).
    ALTER TABLE security_alerts
      ADD COLUMN notified_at timestamptz,
      ADD COLUMN acknowledged_note bytea;
    CREATE INDEX security_alerts_unnotified ON security_alerts (practice_id, created_at) WHERE notified_at IS NULL;
    GRANT UPDATE (notified_at, acknowledged_note) ON security_alerts TO enamel_app;

    ALTER TABLE practice_settings
      ALTER COLUMN mfa_required_for_all SET DEFAULT true,
      ADD COLUMN export_volume_threshold integer NOT NULL DEFAULT 50 CHECK (export_volume_threshold BETWEEN 5 AND 10000),
      ADD COLUMN security_contact_user_id uuid,
      ADD CONSTRAINT practice_settings_security_contact FOREIGN KEY (practice_id, security_contact_user_id)
        REFERENCES users (practice_id, id) ON DELETE SET NULL (security_contact_user_id);

    -- One throttle for every credential step, per scope and key (an IP address): no account ids.
    CREATE TABLE throttle_counters (
      scope text NOT NULL CHECK (scope IN ('password', 'second_factor', 'operator', 'dob')),
      key text NOT NULL CHECK (length(key) BETWEEN 1 AND 64),
      failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
      window_started_at timestamptz NOT NULL,
      blocked_until timestamptz,
      PRIMARY KEY (scope, key)
    );
    GRANT SELECT, INSERT, UPDATE, DELETE ON throttle_counters TO enamel_app;
    DROP TABLE signin_ip_throttle;

    -- Operators: reactivation issues a new password (and TOTP secret).
    GRANT UPDATE (password_hash, display_name) ON operators TO enamel_app;

    -- Key rotation: a failed job keeps its reason (codes and a table name, never a value).
    ALTER TABLE key_rotations DROP CONSTRAINT key_rotations_status_check;
    ALTER TABLE key_rotations
      ADD CONSTRAINT key_rotations_status_check CHECK (status IN ('running', 'done', 'failed')),
      ADD COLUMN error_code text CHECK (error_code ~ '^[A-Za-z0-9_]{1,60}$'),
      ADD COLUMN error_table text CHECK (error_table ~ '^[a-z_][a-z0-9_]{0,62}$');
    DROP INDEX key_rotations_one_running;
    CREATE UNIQUE INDEX key_rotations_one_open ON key_rotations (practice_id, purpose) WHERE status IN ('running', 'failed');

    -- Whether an UPDATE of a row is a re-encryption and nothing else: the transaction says so
    -- (enamel.reencrypt = 'fields:<version>' or 'blind-index', set by the rotation batch), a rotation
    -- of that kind is running for the practice, no column but the declared encrypted ones (and their
    -- blind indexes) changed, and every changed envelope is written under the rotation's new version.
    -- (The rotation itself checks that the new envelope decrypts to exactly the old plaintext.)
    CREATE FUNCTION enamel_is_reencryption(p_practice uuid, old_row jsonb, new_row jsonb, cols text[]) RETURNS boolean
      LANGUAGE plpgsql STABLE
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        marker text := coalesce(current_setting('enamel.reencrypt', true), '');
        target integer;
        c text;
        env bytea;
        bidx text[] := ARRAY(SELECT x || '_bidx' FROM unnest(cols) AS x);
      BEGIN
        IF marker = '' THEN RETURN false; END IF;
        IF (old_row - cols - bidx) IS DISTINCT FROM (new_row - cols - bidx) THEN RETURN false; END IF;
        IF marker ~ '^fields:[0-9]{1,5}$' THEN
          target := split_part(marker, ':', 2)::integer;
          IF NOT EXISTS (SELECT 1 FROM key_rotations WHERE practice_id = p_practice AND purpose = 'fields' AND status = 'running' AND to_version = target) THEN
            RETURN false;
          END IF;
          FOREACH c IN ARRAY cols LOOP
            IF (old_row -> (c || '_bidx')) IS DISTINCT FROM (new_row -> (c || '_bidx')) THEN RETURN false; END IF;
            IF (old_row -> c) IS DISTINCT FROM (new_row -> c) THEN
              IF jsonb_typeof(new_row -> c) <> 'string' OR jsonb_typeof(old_row -> c) <> 'string' THEN RETURN false; END IF;
              env := decode(substr(new_row ->> c, 3), 'hex');
              IF length(env) < 31 OR get_byte(env, 0) <> 1 OR get_byte(env, 1) * 256 + get_byte(env, 2) <> target THEN RETURN false; END IF;
            END IF;
          END LOOP;
          RETURN true;
        ELSIF marker = 'blind-index' THEN
          IF NOT EXISTS (SELECT 1 FROM key_rotations WHERE practice_id = p_practice AND purpose = 'blind-index' AND status = 'running') THEN
            RETURN false;
          END IF;
          FOREACH c IN ARRAY cols LOOP
            IF (old_row -> c) IS DISTINCT FROM (new_row -> c) THEN RETURN false; END IF;
          END LOOP;
          RETURN true;
        END IF;
        RETURN false;
      END $$;

    -- Insert-only tables with encrypted columns: an UPDATE of those columns is only a re-encryption.
    -- TG_ARGV: the encrypted columns of the table.
    CREATE FUNCTION enamel_reencrypt_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      cols text[] := TG_ARGV::text[];
      c text;
    BEGIN
      FOREACH c IN ARRAY cols LOOP
        IF (to_jsonb(OLD) -> c) IS DISTINCT FROM (to_jsonb(NEW) -> c) THEN
          IF enamel_is_reencryption(OLD.practice_id, to_jsonb(OLD), to_jsonb(NEW), cols) THEN RETURN NEW; END IF;
          RAISE EXCEPTION '%.% can only change by re-encryption under a running key rotation', TG_TABLE_NAME, c USING ERRCODE = '42501';
        END IF;
      END LOOP;
      RETURN NEW;
    END $$;
    CREATE TRIGGER clinical_note_amendments_reencrypt BEFORE UPDATE ON clinical_note_amendments FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('body');
    CREATE TRIGGER form_submissions_reencrypt BEFORE UPDATE ON form_submissions FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('content');
    CREATE TRIGGER plan_decisions_reencrypt BEFORE UPDATE ON plan_decisions FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('signer');
    CREATE TRIGGER patient_documents_reencrypt BEFORE UPDATE ON patient_documents FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('title');
    CREATE TRIGGER break_glass_grants_reencrypt BEFORE UPDATE ON break_glass_grants FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('justification');
    CREATE TRIGGER outbox_messages_reencrypt BEFORE UPDATE ON outbox_messages FOR EACH ROW EXECUTE FUNCTION enamel_reencrypt_guard('to_address', 'params');
    GRANT UPDATE (body) ON clinical_note_amendments TO enamel_app;
    GRANT UPDATE (content) ON form_submissions TO enamel_app;
    GRANT UPDATE (signer) ON plan_decisions TO enamel_app;
    GRANT UPDATE (title) ON patient_documents TO enamel_app;
    GRANT UPDATE (justification) ON break_glass_grants TO enamel_app;
    GRANT UPDATE (to_address, params) ON outbox_messages TO enamel_app;
    GRANT UPDATE (content) ON treatment_plan_items TO enamel_app;

    -- Signed notes and decided plans: a re-encryption passes; any other change is still refused.
    CREATE OR REPLACE FUNCTION enamel_signed_note_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF enamel_purge_allowed(OLD.practice_id, OLD.patient_id) THEN RETURN OLD; END IF;
        RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = '42501';
      END IF;
      IF OLD.status = 'signed' THEN
        IF enamel_is_reencryption(OLD.practice_id, to_jsonb(OLD), to_jsonb(NEW), ARRAY['body']) THEN RETURN NEW; END IF;
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
        IF TG_OP = 'UPDATE' AND OLD.status IN ('accepted', 'declined')
           AND enamel_is_reencryption(OLD.practice_id, to_jsonb(OLD), to_jsonb(NEW), ARRAY['title']) THEN
          RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE' OR OLD.status IN ('accepted', 'declined') THEN
          RAISE EXCEPTION 'a decided treatment plan cannot be changed' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
      END IF;
      SELECT status, patient_id INTO plan_status, plan_patient FROM treatment_plans WHERE id = COALESCE(NEW.plan_id, OLD.plan_id);
      IF TG_OP = 'DELETE' AND enamel_purge_allowed(OLD.practice_id, plan_patient) THEN RETURN OLD; END IF;
      IF plan_status IN ('accepted', 'declined') THEN
        IF TG_OP = 'UPDATE' AND enamel_is_reencryption(OLD.practice_id, to_jsonb(OLD), to_jsonb(NEW), ARRAY['content']) THEN RETURN NEW; END IF;
        RAISE EXCEPTION 'the items of a decided treatment plan cannot be changed' USING ERRCODE = '42501';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;

    -- Audit events are deleted only by enamel_purge_practice_audit(), never with the practice's data.
    CREATE OR REPLACE FUNCTION enamel_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events'
         AND current_setting('enamel.purge', true) = 'audit:' || OLD.practice_id::text
         AND EXISTS (SELECT 1 FROM practices WHERE id = OLD.practice_id AND purged_at IS NOT NULL
                     AND audit_purge_after IS NOT NULL AND legal_hold_at IS NULL) THEN
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

    -- The practice purge (after the tail) as migration 18 wrote it, except that the audit trail
    -- stays: audit_events and audit_verifications are kept, and audit_purge_after is fixed from the
    -- practice's audit retention (years after termination, at least six).
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

    -- Purges a purged practice's audit events once its audit retention has passed, and only when
    -- every event is sealed and the final head carries a signed checkpoint (kept, with the others,
    -- as the record that the chain existed and how it ended).
    CREATE FUNCTION enamel_purge_practice_audit(p_practice uuid, p_now timestamptz) RETURNS jsonb
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE
        pr practices%ROWTYPE;
        head bigint;
        n integer;
        v integer;
      BEGIN
        SELECT * INTO pr FROM practices WHERE id = p_practice AND kind = 'practice' FOR UPDATE;
        IF NOT FOUND OR pr.purged_at IS NULL OR pr.audit_purged_at IS NOT NULL OR pr.audit_purge_after IS NULL
           OR pr.audit_purge_after > p_now OR pr.legal_hold_at IS NOT NULL THEN
          RAISE EXCEPTION 'the audit events of practice % are not due for purge', p_practice USING ERRCODE = '42501';
        END IF;
        IF EXISTS (SELECT 1 FROM audit_events WHERE practice_id = p_practice AND hash IS NULL) THEN
          RAISE EXCEPTION 'practice % has unsealed audit events', p_practice USING ERRCODE = '42501';
        END IF;
        SELECT max(seq) INTO head FROM audit_events WHERE practice_id = p_practice;
        IF head IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE practice_id = p_practice AND seq = head) THEN
          RAISE EXCEPTION 'practice % has no signed checkpoint of its final audit head', p_practice USING ERRCODE = '42501';
        END IF;
        PERFORM set_config('enamel.purge', 'audit:' || p_practice::text, true);
        DELETE FROM audit_events WHERE practice_id = p_practice;
        GET DIAGNOSTICS n = ROW_COUNT;
        DELETE FROM audit_verifications WHERE practice_id = p_practice;
        GET DIAGNOSTICS v = ROW_COUNT;
        UPDATE practices SET audit_purged_at = p_now, updated_at = now() WHERE id = p_practice;
        PERFORM set_config('enamel.purge', '', true);
        RETURN jsonb_build_object('audit_events', n, 'audit_verifications', v, 'head_seq', coalesce(head, 0));
      END $$;
    REVOKE ALL ON FUNCTION enamel_purge_practice_audit(uuid, timestamptz) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_purge_practice_audit(uuid, timestamptz) TO enamel_app;

    -- The cleanup job's orphan sweep: which of these blob names some practice's stored_files row
    -- still names (names only; no practice, no content). The function runs as the schema owner,
    -- which forced RLS would blind: a read-only policy for the owner role alone, as for the sealer.
    CREATE POLICY stored_files_owner_read ON stored_files FOR SELECT TO CURRENT_USER USING (true);
    CREATE FUNCTION enamel_known_objects(p_names text[]) RETURNS SETOF text
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT object_name FROM stored_files WHERE object_name = ANY(p_names) $$;
    REVOKE ALL ON FUNCTION enamel_known_objects(text[]) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_known_objects(text[]) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION enamel_known_objects(text[]);
    DROP POLICY stored_files_owner_read ON stored_files;
    DROP FUNCTION enamel_purge_practice_audit(uuid, timestamptz);
    DROP TRIGGER clinical_note_amendments_reencrypt ON clinical_note_amendments;
    DROP TRIGGER form_submissions_reencrypt ON form_submissions;
    DROP TRIGGER plan_decisions_reencrypt ON plan_decisions;
    DROP TRIGGER patient_documents_reencrypt ON patient_documents;
    DROP TRIGGER break_glass_grants_reencrypt ON break_glass_grants;
    DROP TRIGGER outbox_messages_reencrypt ON outbox_messages;
    REVOKE UPDATE (body) ON clinical_note_amendments FROM enamel_app;
    REVOKE UPDATE (content) ON form_submissions FROM enamel_app;
    REVOKE UPDATE (signer) ON plan_decisions FROM enamel_app;
    REVOKE UPDATE (title) ON patient_documents FROM enamel_app;
    REVOKE UPDATE (justification) ON break_glass_grants FROM enamel_app;
    REVOKE UPDATE (to_address, params) ON outbox_messages FROM enamel_app;
    REVOKE UPDATE (content) ON treatment_plan_items FROM enamel_app;
    DROP FUNCTION enamel_reencrypt_guard();

    -- The guards and the practice purge as migration 18 wrote them.
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
    CREATE OR REPLACE FUNCTION enamel_purge_practice(p_practice uuid, p_now timestamptz) RETURNS jsonb
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
    DROP FUNCTION enamel_is_reencryption(uuid, jsonb, jsonb, text[]);

    DROP INDEX key_rotations_one_open;
    CREATE UNIQUE INDEX key_rotations_one_running ON key_rotations (practice_id, purpose) WHERE status = 'running';
    ALTER TABLE key_rotations DROP COLUMN error_code, DROP COLUMN error_table, DROP CONSTRAINT key_rotations_status_check;
    ALTER TABLE key_rotations ADD CONSTRAINT key_rotations_status_check CHECK (status IN ('running', 'done'));
    REVOKE UPDATE (password_hash, display_name) ON operators FROM enamel_app;

    CREATE TABLE signin_ip_throttle (
      ip inet PRIMARY KEY,
      failures integer NOT NULL DEFAULT 0,
      window_started_at timestamptz NOT NULL DEFAULT now(),
      blocked_until timestamptz
    );
    GRANT SELECT, INSERT, UPDATE, DELETE ON signin_ip_throttle TO enamel_app;
    DROP TABLE throttle_counters;

    ALTER TABLE practice_settings DROP CONSTRAINT practice_settings_security_contact,
      DROP COLUMN security_contact_user_id, DROP COLUMN export_volume_threshold,
      ALTER COLUMN mfa_required_for_all SET DEFAULT false;
    REVOKE UPDATE (notified_at, acknowledged_note) ON security_alerts FROM enamel_app;
    DROP INDEX security_alerts_unnotified;
    ALTER TABLE security_alerts DROP COLUMN notified_at, DROP COLUMN acknowledged_note;

    DROP FUNCTION enamel_audit_chain_ids();
    CREATE OR REPLACE FUNCTION enamel_practice_directory() RETURNS TABLE (id uuid, slug text, name text, status text, created_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id, slug, name, status, created_at FROM practices ORDER BY name $$;
    CREATE OR REPLACE FUNCTION enamel_practice_ids() RETURNS SETOF uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices ORDER BY id $$;
    CREATE OR REPLACE FUNCTION enamel_practice_id_by_slug(p_slug text) RETURNS uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices WHERE slug = p_slug AND status = 'active' $$;
    DROP INDEX practices_one_installation;
    ALTER TABLE practices DROP COLUMN kind, DROP COLUMN audit_purge_after, DROP COLUMN audit_purged_at;
  `);
}
