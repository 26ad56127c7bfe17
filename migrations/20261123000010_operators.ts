import type { Knex } from 'knex';

/*
 * Platform operators: a separate kind of account (not practice users). They manage practices
 * (create, suspend, settings) and see no PHI. Their TOTP secret is wrapped by the key provider
 * (platform context), like a data key. A practice owner may grant an operator time-limited access
 * for a support case (operator_grants, a tenant table); revocable, audited.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE operators (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
      display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
      password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
      totp_kek_id text NOT NULL,
      totp_wrapped bytea NOT NULL,
      totp_last_step bigint,
      failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
      locked_until timestamptz,
      last_login_at timestamptz,
      sessions_valid_after timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    GRANT SELECT, INSERT, UPDATE (totp_kek_id, totp_wrapped, totp_last_step, failed_logins, locked_until, last_login_at, status, sessions_valid_after) ON operators TO enamel_app;

    CREATE TABLE operator_grants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      operator_id uuid NOT NULL REFERENCES operators(id),
      case_reference text NOT NULL CHECK (case_reference ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
      granted_by uuid NOT NULL,
      granted_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL CHECK (expires_at > granted_at),
      revoked_at timestamptz,
      revoked_by uuid,
      CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
      FOREIGN KEY (practice_id, granted_by) REFERENCES users (practice_id, id)
    );
    CREATE INDEX operator_grants_active ON operator_grants (practice_id, operator_id, expires_at);
    SELECT enamel_tenant_table('operator_grants');
    GRANT SELECT, INSERT ON operator_grants TO enamel_app;
    GRANT UPDATE (revoked_at, revoked_by) ON operator_grants TO enamel_app;

    -- Operators create practices (inside withPractice for the new id, so the policy's check holds).
    GRANT INSERT ON practices TO enamel_app;

    -- The practice directory for operators: names, slugs, status — no PHI, no tenant rows.
    CREATE FUNCTION enamel_practice_directory() RETURNS TABLE (id uuid, slug text, name text, status text, created_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id, slug, name, status, created_at FROM practices ORDER BY name $$;
    REVOKE ALL ON FUNCTION enamel_practice_directory() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_practice_directory() TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION enamel_practice_directory();
    REVOKE INSERT ON practices FROM enamel_app;
    DROP TABLE operator_grants; DROP TABLE operators;
  `);
}
