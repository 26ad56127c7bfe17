import type { Knex } from 'knex';

/*
 * The practice's machine-readable export (issue 17, docs/EXPORT.md). An export is a background job
 * with its progress in practice_exports: which phase, how many patients done of how many, the cursor
 * to resume from after a restart, and — until the archive is built — the archive's passphrase as an
 * encrypted field (shown once to the owner, destroyed when the archive is written). Each batch's
 * FHIR resources are kept as encrypted stored files (practice_export_parts) until the archive is
 * assembled. The purges learn these tables in migration 32.
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
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION enamel_open_exports();
    DROP TABLE practice_export_parts;
    DROP TABLE practice_exports;
  `);
}
