import type { Knex } from 'knex';

/*
 * Encryption at rest (src/crypto/README.md): wrapped per-practice data keys, re-encryption jobs,
 * the key-operation ledger, and the metadata of encrypted files.
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE data_keys (
      practice_id uuid NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
      purpose text NOT NULL CHECK (purpose IN ('fields', 'blind-index', 'files')),
      version integer NOT NULL CHECK (version BETWEEN 1 AND 65535),
      status text NOT NULL CHECK (status IN ('active', 'retired', 'destroyed')),
      kek_id text,
      -- The data key wrapped by the KEK (IV ‖ ciphertext ‖ tag). Never the plaintext key.
      wrapped bytea,
      created_at timestamptz NOT NULL DEFAULT now(),
      retired_at timestamptz,
      destroyed_at timestamptz,
      PRIMARY KEY (practice_id, purpose, version),
      CHECK ((status = 'destroyed') = (wrapped IS NULL)),
      CHECK ((wrapped IS NULL) = (kek_id IS NULL))
    );
    CREATE UNIQUE INDEX data_keys_one_active ON data_keys (practice_id, purpose) WHERE status = 'active';
    SELECT enamel_tenant_table('data_keys');
    GRANT SELECT, INSERT, UPDATE ON data_keys TO enamel_app;

    -- A re-encryption after a data-key rotation: resumable from its cursor, progress in done/total.
    CREATE TABLE key_rotations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
      purpose text NOT NULL CHECK (purpose IN ('fields', 'blind-index', 'files')),
      from_version integer NOT NULL,
      to_version integer NOT NULL,
      status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
      total integer NOT NULL DEFAULT 0 CHECK (total >= 0),
      done integer NOT NULL DEFAULT 0 CHECK (done >= 0),
      -- Which table (index in the job's table list) and the last row id finished in it.
      cursor_table integer NOT NULL DEFAULT 0,
      cursor_id uuid,
      started_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    );
    CREATE UNIQUE INDEX key_rotations_one_running ON key_rotations (practice_id, purpose) WHERE status = 'running';
    SELECT enamel_tenant_table('key_rotations');
    GRANT SELECT, INSERT, UPDATE ON key_rotations TO enamel_app;

    -- Append-only ledger of key operations (create, rotate, re-encrypt, rewrap, shred). Ids only.
    CREATE TABLE key_events (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
      action text NOT NULL CHECK (action IN ('created', 'rotated', 'reencrypted', 'rewrapped', 'shredded')),
      purpose text CHECK (purpose IN ('fields', 'blind-index', 'files')),
      version integer,
      kek_id text,
      actor text NOT NULL,
      count integer,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    SELECT enamel_tenant_table('key_events');
    GRANT SELECT, INSERT ON key_events TO enamel_app;

    -- Encrypted blobs in the FileStore. Object names are random; nothing about the content.
    CREATE TABLE stored_files (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
      object_name text NOT NULL UNIQUE CHECK (object_name ~ '^[a-f0-9]{32}$'),
      key_version integer NOT NULL,
      plaintext_size bigint NOT NULL CHECK (plaintext_size >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, id)
    );
    CREATE INDEX stored_files_practice_version ON stored_files (practice_id, key_version);
    SELECT enamel_tenant_table('stored_files');
    GRANT SELECT, INSERT, UPDATE, DELETE ON stored_files TO enamel_app;

    -- Every practice id, for the operator's cross-practice key jobs (ids only, no names).
    CREATE FUNCTION enamel_practice_ids() RETURNS SETOF uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices ORDER BY id $$;
    REVOKE ALL ON FUNCTION enamel_practice_ids() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_practice_ids() TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION enamel_practice_ids();
    DROP TABLE stored_files;
    DROP TABLE key_events;
    DROP TABLE key_rotations;
    DROP TABLE data_keys;
  `);
}
