import type { Knex } from 'knex';

/*
 * Practice roles and assignments. The permission catalogue lives in code (src/permissions.ts);
 * a role stores the names it grants, and names unknown to the running code grant nothing. The
 * owner role (`is_system`) always means every permission and cannot be edited. Users get roles and
 * locations; invitations are single-use links stored as SHA-256 hashes only.
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE roles (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{1,39}$'),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
      description text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
      permissions text[] NOT NULL DEFAULT '{}' CHECK (array_position(permissions, NULL) IS NULL),
      is_system boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, key),
      UNIQUE (practice_id, name),
      UNIQUE (practice_id, id)
    );
    SELECT enamel_tenant_table('roles');
    GRANT SELECT, INSERT, UPDATE, DELETE ON roles TO enamel_app;

    CREATE TABLE user_roles (
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      role_id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (practice_id, user_id, role_id),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE,
      FOREIGN KEY (practice_id, role_id) REFERENCES roles (practice_id, id)
    );
    CREATE INDEX user_roles_role ON user_roles (practice_id, role_id);
    SELECT enamel_tenant_table('user_roles');
    GRANT SELECT, INSERT, DELETE ON user_roles TO enamel_app;

    CREATE TABLE user_locations (
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      location_id uuid NOT NULL,
      PRIMARY KEY (practice_id, user_id, location_id),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE,
      FOREIGN KEY (practice_id, location_id) REFERENCES locations (practice_id, id)
    );
    SELECT enamel_tenant_table('user_locations');
    GRANT SELECT, INSERT, DELETE ON user_locations TO enamel_app;

    -- Set when an administrator resets a user's MFA: that user must enrol again at the next sign-in,
    -- whether or not MFA is otherwise required for them.
    ALTER TABLE users ADD COLUMN mfa_reset_at timestamptz;

    CREATE TABLE user_invitations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
      created_by uuid NOT NULL,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      revoked_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE
    );
    CREATE INDEX user_invitations_user ON user_invitations (practice_id, user_id);
    SELECT enamel_tenant_table('user_invitations');
    GRANT SELECT, INSERT, UPDATE ON user_invitations TO enamel_app;

  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE user_invitations; ALTER TABLE users DROP COLUMN mfa_reset_at; DROP TABLE user_locations; DROP TABLE user_roles; DROP TABLE roles;
  `);
}
