import type { Knex } from 'knex';
import { createKnex } from '../../src/db/knex.js';
import { onDatabase } from '../../src/db/provision.js';
import { testCluster } from './cluster.js';

/**
 * Runs SQL as a database superuser who also switches triggers off (session_replication_role =
 * replica): the attacker the audit chain must catch.
 */
export async function tamperAsSuperuser(database: string, sql: string, bindings: readonly unknown[] = []): Promise<void> {
  const su = createKnex(onDatabase(testCluster().superuserUrl, database), { poolMax: 1 });
  try {
    await su.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw(sql, bindings as Knex.RawBinding[]);
    });
  } finally {
    await su.destroy();
  }
}
