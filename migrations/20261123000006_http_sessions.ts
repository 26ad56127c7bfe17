import type { Knex } from 'knex';

/*
 * Server-side sessions (express-session + connect-pg-simple). Not tenant data: a session exists
 * before anyone has signed in. It holds ids and timestamps only (src/auth/session.ts).
 */

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE http_sessions (
      sid varchar NOT NULL PRIMARY KEY,
      sess json NOT NULL,
      expire timestamp(6) NOT NULL
    );
    CREATE INDEX http_sessions_expire ON http_sessions (expire);
    GRANT SELECT, INSERT, UPDATE, DELETE ON http_sessions TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE http_sessions;');
}
