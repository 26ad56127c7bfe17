import { createHash } from 'node:crypto';
import { audit } from '../audit/record.js';
import type { Db } from '../db/tenant.js';
import { deleteSessions, userSessionRows } from '../queries/sessions.queries.js';

/**
 * A user's own sessions: listed with an opaque handle (a hash of the session id, never the id
 * itself), and ended one by one or all but the current one.
 */
export interface OwnSession {
  handle: string;
  createdAt: Date;
  lastSeenAt: Date;
  current: boolean;
}

export function sessionHandle(sid: string): string {
  return createHash('sha256').update(sid).digest('hex').slice(0, 24);
}

const rows = userSessionRows;

export async function listOwnSessions(db: Db, practiceId: string, userId: string, currentSid: string): Promise<OwnSession[]> {
  return (await rows(db.knex, practiceId, userId))
    .filter((r) => r.sess.staff?.stage === 'signed_in')
    .map((r) => ({ handle: sessionHandle(r.sid), createdAt: new Date(r.sess.staff!.createdAt), lastSeenAt: new Date(r.sess.staff!.lastSeenAt), current: r.sid === currentSid }))
    .sort((a, b) => b.lastSeenAt.getTime() - a.lastSeenAt.getTime());
}

/** Ends the user's sessions matching `handle` ('others' = every one but the current). Returns how many. */
export async function endOwnSessions(db: Db, practiceId: string, userId: string, currentSid: string, handle: string, meta: { ip: string; requestId: string }): Promise<number> {
  const targets = (await rows(db.knex, practiceId, userId)).filter((r) => r.sid !== currentSid && (handle === 'others' || sessionHandle(r.sid) === handle)).map((r) => r.sid);
  return db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const ended = await deleteSessions(trx, targets);
    await audit.record(trx, { practiceId, actor: { kind: 'user', id: userId }, action: 'session_revoke', outcome: 'allowed', resource: { type: 'user', id: userId }, ip: meta.ip, requestId: meta.requestId, details: { count: ended } });
    return ended;
  });
}
