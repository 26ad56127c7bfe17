import { pendingMigrations } from '../../db/migrations.js';
import type { Db } from '../../db/tenant.js';

/** Whether the database answers and every migration this build ships is applied (readiness). */
export async function readiness(db: Db): Promise<{ ready: true } | { ready: false; reason: 'database'; error: unknown } | { ready: false; reason: 'migrations_pending'; pending: number }> {
  let pending: string[];
  try {
    pending = await pendingMigrations(db.knex);
  } catch (error) {
    return { ready: false, reason: 'database', error };
  }
  return pending.length > 0 ? { ready: false, reason: 'migrations_pending', pending: pending.length } : { ready: true };
}
