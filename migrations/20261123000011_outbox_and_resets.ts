import type { Knex } from 'knex';

/*
 * The outbox: messages are written in the transaction that causes them and sent afterwards by the
 * outbox job, with retries and backoff. The recipient and the template parameters (which can hold
 * a link with a credential in it) are field envelopes. Password reset tokens are stored as
 * SHA-256 hashes, single use, valid 30 minutes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE outbox_messages (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      channel text NOT NULL CHECK (channel IN ('email', 'sms')),
      template text NOT NULL CHECK (template ~ '^[a-z][a-z0-9_]{1,40}$'),
      to_address bytea NOT NULL,
      params bytea NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
      attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text CHECK (last_error ~ '^[A-Za-z0-9_]{1,60}$'),
      created_at timestamptz NOT NULL DEFAULT now(),
      sent_at timestamptz
    );
    CREATE INDEX outbox_due ON outbox_messages (practice_id, next_attempt_at) WHERE status = 'pending';
    SELECT enamel_tenant_table('outbox_messages');
    GRANT SELECT, INSERT ON outbox_messages TO enamel_app;
    GRANT UPDATE (status, attempts, next_attempt_at, last_error, sent_at) ON outbox_messages TO enamel_app;

    CREATE TABLE password_reset_tokens (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      user_id uuid NOT NULL,
      token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE
    );
    CREATE INDEX password_reset_tokens_user ON password_reset_tokens (practice_id, user_id, created_at);
    SELECT enamel_tenant_table('password_reset_tokens');
    GRANT SELECT, INSERT ON password_reset_tokens TO enamel_app;
    GRANT UPDATE (used_at) ON password_reset_tokens TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE password_reset_tokens; DROP TABLE outbox_messages;');
}
