import type { Knex } from 'knex';

/*
 * The audit log (src/audit/README.md). Events are inserted unsealed in the request's transaction
 * (no lock, no chain head); the sealer assigns each practice's next sequence numbers and hashes in
 * batches shortly after. Sealed rows can never change: the trigger refuses any UPDATE of content
 * or of an already-sealed row, and every DELETE and TRUNCATE; the runtime role may only INSERT
 * and fill in the seal columns (column-level grant).
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE audit_events (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      actor_type text NOT NULL CHECK (actor_type IN ('user', 'patient_link', 'system', 'operator', 'anonymous')),
      actor_id text CHECK (actor_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
      action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{1,48}$'),
      resource_type text CHECK (resource_type ~ '^[a-z][a-z0-9_]{1,40}$'),
      resource_id text CHECK (resource_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
      patient_id uuid,
      outcome text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
      client_ip inet,
      request_id text CHECK (request_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
      reason text CHECK (reason ~ '^[a-z][a-z0-9_]{1,40}$'),
      details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
      -- Seal: filled in once by the sealer.
      seq bigint,
      prev_hash bytea,
      hash bytea,
      sealed_at timestamptz,
      CHECK ((seq IS NULL) = (hash IS NULL) AND (hash IS NULL) = (sealed_at IS NULL)),
      UNIQUE (practice_id, seq)
    );
    CREATE INDEX audit_events_unsealed ON audit_events (practice_id, id) WHERE hash IS NULL;
    CREATE INDEX audit_events_patient ON audit_events (practice_id, patient_id, occurred_at) WHERE patient_id IS NOT NULL;
    CREATE INDEX audit_events_actor ON audit_events (practice_id, actor_type, actor_id, occurred_at);
    CREATE INDEX audit_events_time ON audit_events (practice_id, occurred_at);
    SELECT enamel_tenant_table('audit_events');

    CREATE FUNCTION enamel_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = '42501';
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
    CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION enamel_audit_guard();
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION enamel_audit_guard();

    GRANT SELECT, INSERT ON audit_events TO enamel_app;
    GRANT UPDATE (seq, prev_hash, hash, sealed_at) ON audit_events TO enamel_app;

    -- Signed checkpoints: Ed25519 over (practice, seq, head hash, time); the key is the provider's.
    CREATE TABLE audit_checkpoints (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      seq bigint NOT NULL CHECK (seq >= 0),
      head_hash bytea NOT NULL,
      signed_at timestamptz NOT NULL,
      key_id text NOT NULL,
      signature bytea NOT NULL,
      UNIQUE (practice_id, seq)
    );
    SELECT enamel_tenant_table('audit_checkpoints');
    CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
      FOR EACH ROW EXECUTE FUNCTION enamel_audit_guard();
    GRANT SELECT, INSERT ON audit_checkpoints TO enamel_app;

    -- Which practices have events waiting for the sealer (ids only). The function runs as the
    -- schema owner, which RLS (forced) would blind: a read-only policy for the owner role alone.
    CREATE POLICY audit_owner_read ON audit_events FOR SELECT TO CURRENT_USER USING (true);
    CREATE FUNCTION enamel_audit_unsealed_practices() RETURNS SETOF uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT DISTINCT practice_id FROM audit_events WHERE hash IS NULL $$;
    REVOKE ALL ON FUNCTION enamel_audit_unsealed_practices() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_audit_unsealed_practices() TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION enamel_audit_unsealed_practices();
    DROP TABLE audit_checkpoints;
    DROP TABLE audit_events;
    DROP FUNCTION enamel_audit_guard();
  `);
}
