import type { Knex } from 'knex';

/*
 * Staff accounts (one per person, per practice), their recovery codes, and the per-IP sign-in
 * throttle. Passwords are argon2id PHC strings; the TOTP secret is an encrypted field (envelope in
 * bytea, declared in src/queries/users.queries.ts). Roles come with the authorization issue; until
 * then `is_owner` marks the practice owner (MFA always required).
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
      display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
      status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'deactivated')),
      is_owner boolean NOT NULL DEFAULT false,
      password_hash text CHECK (password_hash LIKE '$argon2id$%'),
      password_changed_at timestamptz,
      totp_secret bytea,
      totp_last_step bigint,
      mfa_enrolled_at timestamptz,
      failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
      locked_until timestamptz,
      last_login_at timestamptz,
      -- Set when all sessions must end (password or MFA change, admin action): sessions created
      -- before it are void. NULL: none revoked.
      sessions_valid_after timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, email),
      UNIQUE (practice_id, id),
      CHECK (status <> 'active' OR password_hash IS NOT NULL),
      CHECK ((mfa_enrolled_at IS NULL) = (totp_secret IS NULL))
    );
    SELECT enamel_tenant_table('users');
    GRANT SELECT, INSERT, UPDATE ON users TO enamel_app;

    CREATE TABLE user_recovery_codes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      code_hash text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE
    );
    CREATE INDEX user_recovery_codes_user ON user_recovery_codes (practice_id, user_id) WHERE used_at IS NULL;
    SELECT enamel_tenant_table('user_recovery_codes');
    GRANT SELECT, INSERT, UPDATE, DELETE ON user_recovery_codes TO enamel_app;

    -- Per-IP sign-in failures across all practices (a sliding window; no PHI, no account ids).
    CREATE TABLE signin_ip_throttle (
      ip inet PRIMARY KEY,
      failures integer NOT NULL DEFAULT 0,
      window_started_at timestamptz NOT NULL DEFAULT now(),
      blocked_until timestamptz
    );
    GRANT SELECT, INSERT, UPDATE, DELETE ON signin_ip_throttle TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE signin_ip_throttle; DROP TABLE user_recovery_codes; DROP TABLE users;');
}
