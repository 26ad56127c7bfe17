import knexFactory, { type Knex } from 'knex';

/** Creates a knex pool for one role. Nothing else in the app constructs a pool. */
export function createKnex(connectionString: string, options: { poolMax?: number; applicationName?: string } = {}): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString, application_name: options.applicationName ?? 'enamel', pipeline: true } as Knex.PgConnectionConfig,
    pool: { min: 0, max: options.poolMax ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
}
