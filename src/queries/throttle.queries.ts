import type { Knex } from 'knex';

/** The only SQL of the credential throttle (src/auth/throttle.ts): per-IP counters per step, no account ids. */

export async function ipBlockedUntil(knex: Knex, scope: string, ip: string): Promise<Date | null> {
  const row = await knex('throttle_counters').where({ scope, key: ip }).first<{ blocked_until: Date | null } | undefined>('blocked_until');
  return row?.blocked_until ?? null;
}

/** One more failure in a sliding window; blocks the address for `windowMs` at `max`. Returns whether it is blocked now. */
export function recordIpFailure(knex: Knex, c: { scope: string; ip: string; now: Date; windowMs: number; max: number }): Promise<boolean> {
  return knex.transaction(async (trx) => {
    await trx('throttle_counters').insert({ scope: c.scope, key: c.ip, failures: 0, window_started_at: c.now }).onConflict(['scope', 'key']).ignore();
    const row = await trx('throttle_counters').where({ scope: c.scope, key: c.ip }).forUpdate().first<{ failures: number; window_started_at: Date; blocked_until: Date | null }>('failures', 'window_started_at', 'blocked_until');
    const expired = row.window_started_at.getTime() < c.now.getTime() - c.windowMs;
    const failures = expired ? 1 : row.failures + 1;
    const blocked = failures >= c.max;
    await trx('throttle_counters')
      .where({ scope: c.scope, key: c.ip })
      .update({ failures, window_started_at: expired ? c.now : row.window_started_at, blocked_until: blocked ? new Date(c.now.getTime() + c.windowMs) : row.blocked_until });
    return blocked || Boolean(row.blocked_until && row.blocked_until > c.now);
  });
}

/** Stale counters (cleanup job): windows over a day old with no block running. */
export function deleteStaleCounters(knex: Knex, now: Date): Promise<number> {
  return knex('throttle_counters')
    .where('window_started_at', '<', new Date(now.getTime() - 86_400_000))
    .where((q) => q.whereNull('blocked_until').orWhere('blocked_until', '<', now))
    .delete();
}
