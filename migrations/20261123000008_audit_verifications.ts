import type { Knex } from 'knex';

/*
 * The outcome of each scheduled (or command-line) verification of a practice's audit chain, so the
 * audit page can show the chain's status and the last verified checkpoint. Ids, numbers and a
 * problem code only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE audit_verifications (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      verified_at timestamptz NOT NULL DEFAULT now(),
      incremental boolean NOT NULL,
      ok boolean NOT NULL,
      checked bigint NOT NULL CHECK (checked >= 0),
      last_seq bigint NOT NULL CHECK (last_seq >= 0),
      checkpoints integer NOT NULL CHECK (checkpoints >= 0),
      problem text CHECK (problem ~ '^[a-z_]{1,40}$'),
      problem_seq bigint,
      CHECK (ok = (problem IS NULL))
    );
    CREATE INDEX audit_verifications_latest ON audit_verifications (practice_id, verified_at DESC);
    SELECT enamel_tenant_table('audit_verifications');
    GRANT SELECT, INSERT ON audit_verifications TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE audit_verifications');
}
