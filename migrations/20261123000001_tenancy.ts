import type { Knex } from 'knex';

/*
 * Tenancy: practices, their settings and locations, and the row-level-security pattern every later
 * tenant table follows (docs/ARCHITECTURE.md "Tenant tables"):
 *
 *   CREATE TABLE things (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
 *                        practice_id uuid NOT NULL REFERENCES practices(id), ...);
 *   SELECT enamel_tenant_table('things');          -- ENABLE + FORCE RLS, the practice policy
 *   GRANT SELECT, INSERT, UPDATE ON things TO enamel_app;   -- only what the app needs
 *
 * NOTE: migrations are immutable once merged and never import app code; the runtime role's name
 * `enamel_app` is a fixed part of the schema contract (README "Database roles").
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- The practice of the current transaction, or NULL outside withPractice(). NULLIF: once a
    -- session has used SET LOCAL, the setting reads '' afterwards rather than NULL.
    CREATE FUNCTION enamel_current_practice_id() RETURNS uuid
      LANGUAGE sql STABLE PARALLEL SAFE
      AS $$ SELECT NULLIF(current_setting('app.practice_id', true), '')::uuid $$;

    -- Turns a table into a tenant table: RLS enabled and forced (the owner is bound too), one
    -- policy for reads and writes, so a row can neither be seen nor written for another practice.
    CREATE FUNCTION enamel_tenant_table(tbl regclass) RETURNS void
      LANGUAGE plpgsql
      AS $$
      BEGIN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
        EXECUTE format(
          'CREATE POLICY tenant_isolation ON %s USING (practice_id = enamel_current_practice_id()) '
          'WITH CHECK (practice_id = enamel_current_practice_id())', tbl);
      END $$;
    REVOKE ALL ON FUNCTION enamel_tenant_table(regclass) FROM PUBLIC;

    CREATE TABLE practices (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9]){0,1}$'),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'terminated')),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    -- NOTE: practices is the tenant root: RLS is enabled but not forced, so the owner role's
    -- narrow SECURITY DEFINER lookup below can resolve a slug; the runtime role only ever sees
    -- its current practice's row.
    ALTER TABLE practices ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON practices
      USING (id = enamel_current_practice_id()) WITH CHECK (id = enamel_current_practice_id());

    -- Resolves an active practice's public slug to its id, and nothing else.
    CREATE FUNCTION enamel_practice_id_by_slug(p_slug text) RETURNS uuid
      LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, public
      AS $$ SELECT id FROM practices WHERE slug = p_slug AND status = 'active' $$;
    REVOKE ALL ON FUNCTION enamel_practice_id_by_slug(text) FROM PUBLIC;

    CREATE TABLE practice_settings (
      practice_id uuid PRIMARY KEY REFERENCES practices(id) ON DELETE CASCADE,
      timezone text NOT NULL DEFAULT 'America/New_York' CHECK (length(timezone) BETWEEN 1 AND 64),
      phone text CHECK (length(phone) <= 40),
      -- A practice may shorten the session limits, never lengthen them (DESIGN "Identity and sessions").
      session_idle_minutes integer NOT NULL DEFAULT 30 CHECK (session_idle_minutes BETWEEN 5 AND 30),
      session_absolute_hours integer NOT NULL DEFAULT 12 CHECK (session_absolute_hours BETWEEN 1 AND 12),
      mfa_required_for_all boolean NOT NULL DEFAULT false,
      portal_link_days integer NOT NULL DEFAULT 7 CHECK (portal_link_days BETWEEN 1 AND 30),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    SELECT enamel_tenant_table('practice_settings');

    CREATE TABLE locations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
      address_line1 text NOT NULL DEFAULT '' CHECK (length(address_line1) <= 200),
      address_line2 text NOT NULL DEFAULT '' CHECK (length(address_line2) <= 200),
      city text NOT NULL DEFAULT '' CHECK (length(city) <= 100),
      region text NOT NULL DEFAULT '' CHECK (length(region) <= 100),
      postal_code text NOT NULL DEFAULT '' CHECK (length(postal_code) <= 20),
      phone text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, name),
      -- Lets later tables reference (practice_id, location_id) so a row can never point at another
      -- practice's location.
      UNIQUE (practice_id, id)
    );
    SELECT enamel_tenant_table('locations');

    GRANT SELECT ON knex_migrations TO enamel_app;
    GRANT SELECT, UPDATE ON practices TO enamel_app;
    GRANT SELECT, INSERT, UPDATE ON practice_settings TO enamel_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON locations TO enamel_app;
    GRANT EXECUTE ON FUNCTION enamel_current_practice_id() TO enamel_app;
    GRANT EXECUTE ON FUNCTION enamel_practice_id_by_slug(text) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE locations;
    DROP TABLE practice_settings;
    DROP FUNCTION enamel_practice_id_by_slug(text);
    DROP TABLE practices;
    DROP FUNCTION enamel_tenant_table(regclass);
    DROP FUNCTION enamel_current_practice_id();
    REVOKE SELECT ON knex_migrations FROM enamel_app;
  `);
}
