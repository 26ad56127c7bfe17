import type { Knex } from 'knex';

/** The staff session rows of one user (the session store's table; outside the tenant tables). */
export function userSessionRows(knex: Knex, practiceId: string, userId: string): Promise<{ sid: string; sess: { staff?: { createdAt: number; lastSeenAt: number; stage: string } } }[]> {
  return knex('http_sessions')
    .whereRaw("sess->'staff'->>'userId' = ? AND sess->'staff'->>'practiceId' = ?", [userId, practiceId])
    .where('expire', '>', knex.fn.now())
    .select('sid', 'sess');
}

export function deleteSessions(trx: Knex.Transaction, sids: readonly string[]): Promise<number> {
  return sids.length ? trx('http_sessions').whereIn('sid', sids).delete() : Promise.resolve(0);
}
