import type { Knex } from 'knex';

/*
 * A patient's decision on a treatment plan through a link: accept or decline, with the typed full
 * name and typed signature (encrypted), the hash of exactly the plan content shown, the time, the IP
 * address and the browser's user agent. Insert-only: a decision is a record, never edited.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE plan_decisions (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      plan_id uuid NOT NULL,
      link_id uuid NOT NULL,
      decision text NOT NULL CHECK (decision IN ('accepted', 'declined')),
      signer bytea NOT NULL,
      plan_hash text NOT NULL CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
      decided_at timestamptz NOT NULL,
      client_ip inet,
      user_agent text CHECK (length(user_agent) <= 400),
      UNIQUE (plan_id),
      FOREIGN KEY (practice_id, plan_id) REFERENCES treatment_plans (practice_id, id)
    );
    SELECT enamel_tenant_table('plan_decisions');
    GRANT SELECT, INSERT ON plan_decisions TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE plan_decisions');
}
